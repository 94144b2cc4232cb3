"""File-level stages: refusing non-finite matrices, errors naming the model and the layer."""
import h5py
import numpy as np
import pytest

from tasksim.io import NonFiniteError, str_dataset
from tasksim.similarity.files import write_similarity
from tasksim.similarity.stage import feature_similarity_file, rdm_file


def fake_activations(path, model, layers, n=8, seed=0):
    """An activation file in the layout of docs/data-layout.md with the given ``layer -> array``
    (``None`` = random features)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        str_dataset(f, "ids", [f"img{i}" for i in range(n)])
        g = f.create_group("layers")
        for name, arr in layers.items():
            g.create_dataset(name, data=rng.normal(size=(n, 6, 2, 2)) if arr is None else arr)
        f.attrs.update({"model": model, "probe_sha256": "ab" * 32})
    return path


def test_matrix_with_nan_is_refused_and_nothing_is_written(tmp_path):
    m = np.eye(3)
    m[0, 2] = m[2, 0] = np.nan
    h5, csv = tmp_path / "rsa" / "block1.h5", tmp_path / "rsa" / "block1.csv"
    with pytest.raises(NonFiniteError, match=r"block1\.h5.*\(a, c\)=nan.*\(c, a\)=nan"):
        write_similarity(h5, csv, m, ["a", "b", "c"], "rsa", "block1", {}, "ab" * 32, 8)
    assert not h5.exists() and not csv.exists()
    assert not (tmp_path / "rsa").exists() or not list((tmp_path / "rsa").iterdir())  # no temporary file
    m[0, 2] = m[2, 0] = np.inf
    with pytest.raises(NonFiniteError, match="inf"):
        write_similarity(h5, csv, m, ["a", "b", "c"], "rsa", "block1", {}, "ab" * 32, 8)


def test_finite_matrix_is_written(tmp_path):
    write_similarity(tmp_path / "m.h5", tmp_path / "m.csv", np.eye(2), ["a", "b"], "rsa", "l", {},
                     "ab" * 32, 8)
    assert (tmp_path / "m.h5").exists() and (tmp_path / "m.csv").exists()


def test_constant_layer_rdm_error_names_model_and_layer(tmp_path):
    act = fake_activations(tmp_path / "flat.h5", "flatnet",
                           {"block1": None, "block2": np.ones((8, 6, 2, 2))})
    with pytest.raises(ValueError, match=r"model flatnet, layer block2 .*flat\.h5.*Pearson"):
        rdm_file(act, tmp_path / "rdms.h5", ["block1", "block2"], "none", "pearson")
    assert not (tmp_path / "rdms.h5").exists()


@pytest.mark.parametrize("method", ["cka_linear", "cka_rbf"])
def test_constant_layer_cka_error_names_the_bad_model_and_layer(tmp_path, method):
    files = [fake_activations(tmp_path / f"{m}.h5", m, {"enc": arr}, seed=i)
             for i, (m, arr) in enumerate([("good1", None), ("flatnet", np.ones((8, 6, 2, 2))),
                                           ("good2", None)])]
    with pytest.raises(ValueError, match=rf"{method} on layer enc: .*flatnet") as info:
        feature_similarity_file(method, files, ["good1", "flatnet", "good2"], "enc", {},
                                tmp_path / "s.h5", tmp_path / "s.csv")
    assert "good1" not in str(info.value) and "good2" not in str(info.value)
    assert not (tmp_path / "s.h5").exists()
