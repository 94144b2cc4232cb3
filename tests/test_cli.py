"""The tasksim console command: --version, methods, score (tasksim.cli, tasksim.taxonomy.matrixscore)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasksim import cli
from tasksim import taxonomy as tx
from tasksim.tasks import PAPER_TASKS, TASKS
from tasksim.taxonomy import matrixscore, scoring

REPO = Path(__file__).resolve().parents[1]
NEW = list(PAPER_TASKS)
OLD = {t: TASKS[t].taskbank_name for t in NEW}
NO_GROUNDTRUTH = "/nonexistent/taskonomy-mirror"  # never read when the matrix is refused first


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _similarity(names=NEW, seed: int = 0) -> pd.DataFrame:
    x = np.random.default_rng(seed).standard_normal((len(names), len(names)))
    s = np.tanh((x + x.T) / 2)
    np.fill_diagonal(s, 1.0)
    return pd.DataFrame(s, index=names, columns=names)


def _old_names(m: pd.DataFrame) -> pd.DataFrame:
    return m.rename(index=OLD, columns=OLD)


@pytest.fixture(scope="module")
def groundtruth(shared_taskonomy):
    return matrixscore.load_groundtruth(shared_taskonomy)


def _run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------- version


def test_version_prints_package_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"tasksim {expected}"
    assert cli.version() == expected


def test_console_script_entry_point_is_cli_main():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["tasksim"].split(":")
    import importlib

    assert getattr(importlib.import_module(module), func) is cli.main


@pytest.mark.parametrize("module", ["tasksim", "tasksim.cli"])
def test_python_dash_m_runs_the_command(module):
    proc = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"tasksim {cli.version()}"


def test_installed_console_script_reports_bad_input_in_one_line(tmp_path):
    exe = Path(sys.executable).with_name("tasksim")
    script = str(exe) if exe.exists() else shutil.which("tasksim")
    if script is None:
        pytest.skip("no installed tasksim console script (pip install -e . creates it)")
    bad = tmp_path / "bad.csv"
    bad.write_text(",normal,curvature\nnormal,1,x\ncurvature,0.5,1\n")
    proc = subprocess.run([script, "score", str(bad), "--groundtruth", NO_GROUNDTRUTH],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "non-numeric cell 'x'" in lines[0]


# ------------------------------------------------------------------------------------- methods


def test_methods_lists_registry_and_config_with_defaults(capsys):
    from tasksim.config import load_schema
    from tasksim.similarity.registry import available_methods

    code, out, _ = _run(["methods"], capsys)
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()[2:] if line and not line.startswith(" ")
              and not line.endswith(":")]
    schema = load_schema()["properties"]["similarity"]["properties"]
    assert set(listed) == set(available_methods()) | set(schema["methods"]["items"]["enum"])
    assert {"rsa", "svcca", "pwcca", "cka_linear", "cka_rbf", "attribution_elrp"} <= set(listed)
    # every option of the rsa section with its schema default, and the function's own defaults
    rsa_block = out.split("\nrsa:\n", 1)[1].split("\n\n", 1)[0]
    for key, sub in schema["rsa"]["properties"].items():
        line = next(x for x in rsa_block.splitlines() if f"similarity.rsa.{key} " in x)
        assert str(sub["default"]).strip("[]").split(",")[0].strip("'") in line
    assert "comparison='spearman'" in rsa_block
    # the rbf bandwidth belongs to cka_rbf only; epsilon to epsilon-LRP only
    cka_linear_block = out.split("\ncka_linear:\n", 1)[1].split("\n\n", 1)[0]
    assert "rbf_threshold" not in cka_linear_block
    assert "similarity.cka.rbf_threshold" in out.split("\ncka_rbf:\n", 1)[1].split("\n\n", 1)[0]
    assert "similarity.attribution.epsilon" not in out.split("\nattribution_saliency:\n", 1)[1].split("\n\n", 1)[0]


# ------------------------------------------------------------------------------------- score


@pytest.mark.shared
def test_old_and_new_names_give_identical_output(tmp_path, capsys, shared_taskonomy):
    m = _similarity(seed=1)
    new_csv, old_csv = tmp_path / "m.csv", tmp_path / "m_old" / "m.csv"
    old_csv.parent.mkdir()
    m.to_csv(new_csv)
    # old taskbank names, rows and columns in another order
    order = list(np.random.default_rng(2).permutation(NEW))
    _old_names(m.loc[order, order[::-1]]).to_csv(old_csv)
    outs = []
    for path in (new_csv, old_csv):
        code, out, err = _run(["score", path, "--groundtruth", shared_taskonomy, "--all-k",
                               "--output", path.with_suffix(".scores.csv")], capsys)
        assert code == 0, err
        outs.append(out.replace(str(path.with_suffix(".scores.csv")), "OUT").replace(str(path), "IN"))
    assert outs[0] == outs[1]
    a = pd.read_csv(new_csv.with_suffix(".scores.csv"))
    b = pd.read_csv(old_csv.with_suffix(".scores.csv"))
    pd.testing.assert_frame_equal(a, b)
    assert {"p@1", "p@19", "r@5", "dds_affinity", "dds_affinity_no_own", "dds_wins_vs_pixels",
            "tree_cophenetic", "tree_adjusted_rand"} <= set(a["score"])
    assert a["value"].notna().all()


@pytest.mark.shared
def test_groundtruth_scored_against_itself_is_perfect(tmp_path, capsys, shared_taskonomy, groundtruth):
    tasks = [t for t in TASKS]
    a16 = groundtruth["attribution"]
    base = groundtruth["dds_affinity"]
    for name, gt in (("a16", a16), ("base", base)):
        rows = [t for t in tasks if t in gt.index]
        cols = [t for t in tasks if t in gt.columns]
        gt.loc[rows, cols].to_csv(tmp_path / f"{name}.csv")
    code, out, err = _run(["score", tmp_path / "a16.csv", "--kind", "transferability", "--groundtruth",
                           shared_taskonomy, "--output", tmp_path / "a16_scores.csv"], capsys)
    assert code == 0, err
    s = pd.read_csv(tmp_path / "a16_scores.csv").set_index("score")["value"]
    # the top-5 relevant sources are the matrix's own top 5: P@1 = P@5 = R@5 = 1
    assert s["p@1"] == s["p@5"] == s["r@5"] == 1.0
    assert s["mean_p@k"] == pytest.approx(np.mean(np.minimum(1, 5 / np.arange(1, 20))))
    # its tree is built exactly as the reference tree
    assert s["tree_cophenetic"] == pytest.approx(1.0) and s["tree_adjusted_rand"] == pytest.approx(1.0)
    code, out, err = _run(["score", tmp_path / "base.csv", "--kind", "transferability", "--groundtruth",
                           shared_taskonomy, "--output", tmp_path / "base_scores.csv"], capsys)
    assert code == 0, err
    s = pd.read_csv(tmp_path / "base_scores.csv").set_index("score")["value"]
    assert s["dds_affinity"] == pytest.approx(1.0) and s["dds_affinity_no_own"] == pytest.approx(1.0)
    # the two ground truths differ: the win-rate DDS agreement is high but not 1
    assert 0.8 < s["dds_wins_vs_pixels"] < 0.99


@pytest.mark.shared
def test_full_similarity_matrix_scores_as_the_pipeline(groundtruth):
    m = _similarity(seed=3)
    table = matrixscore.score_task_matrix(m, groundtruth, "similarity", all_k=True)
    got = dict(zip(table["score"], table["value"]))
    z, labels, _ = tx.reference_tree(groundtruth["attribution"])
    protocols = tx.define_protocols(NEW, groundtruth, "taskonomy", (z, labels), 4)
    tree = {"method": "single", "distance": "rows_euclidean", "optimal_ordering": True}
    want = tx.score_matrix(m, protocols, tree, 4)
    for key in [f"p@{k}" for k in range(1, 20)] + [f"r@{k}" for k in range(1, 20)] + [
            "mean_p@k", "dds_affinity", "dds_wins_vs_pixels", "tree_cophenetic", "tree_adjusted_rand"]:
        assert got[key] == pytest.approx(want[key]), key
    assert not table["note"].str.contains("not comparable").any()
    no_own = scoring.dds_score(m, groundtruth["dds_affinity"], own_entry=False)
    assert got["dds_affinity_no_own"] == pytest.approx(no_own)
    # the similarity's unit diagonal matches each target's best source often: leaving it out changes the score
    assert got["dds_affinity_no_own"] != pytest.approx(got["dds_affinity"])


@pytest.mark.shared
def test_task_subset_is_scored_and_flagged(groundtruth):
    sub = ["normal", "depth_zbuffer", "reshading", "curvature", "class_object", "segment_semantic"]
    table = matrixscore.score_task_matrix(_similarity(sub, seed=4), groundtruth)
    values = table.set_index("score")
    assert values.loc["p@1", "n_sources"] == 6 and values.loc["p@1", "n_targets"] == 6
    assert "not comparable" in values.loc["p@1", "note"] and "top-4" in values.loc["p@1", "note"]
    assert values["value"].notna().all()
    # a source x target matrix with no target among its sources: only the _no_own DDS variant
    rect = groundtruth["dds_affinity"].loc[["normal", "curvature", "reshading", "denoising"],
                                           ["depth_zbuffer", "edge_occlusion"]]
    t = matrixscore.score_task_matrix(rect, groundtruth, "transferability").set_index("score")
    assert pd.isna(t.loc["dds_affinity", "value"]) and "skipped" in t.loc["dds_affinity", "note"]
    assert t.loc["dds_affinity_no_own", "value"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- errors


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


SQUARE = ",normal,curvature,reshading\nnormal,1,0.5,0.2\ncurvature,0.5,1,0.3\nreshading,0.2,0.3,1\n"

MALFORMED = {
    "not_square": (",normal,curvature,reshading\nnormal,1,0.5,0.2\ncurvature,0.5,1,0.3\n",
                   "must be square, got 2 rows x 3 columns"),
    "non_numeric": (SQUARE.replace("0.3\n", "high\n", 1),
                    "non-numeric cell 'high' at row 'curvature', column 'reshading'"),
    "empty_cell": (SQUARE.replace(",0.2\n", ",\n", 1), "empty cell at row 'normal', column 'reshading'"),
    "non_finite": (SQUARE.replace("0.5,0.2", "nan,0.2", 1), "non-finite cell 'nan'"),
    "unknown_task": (SQUARE.replace("reshading", "reshadow"), "unknown task name 'reshadow' in the header"),
    "duplicate_task": (",rgb2depth,depth_zbuffer,normal\nrgb2depth,1,0.5,0.2\n"
                       "depth_zbuffer,0.5,1,0.3\nnormal,0.2,0.3,1\n",
                       "duplicate task 'depth_zbuffer' in the header (as 'rgb2depth' and 'depth_zbuffer')"),
    "header_index_mismatch": (SQUARE.replace("\nreshading,", "\nedge2d,"),
                              "header and index name different tasks (only in the header: ['reshading']; "
                              "only in the index: ['edge_texture'])"),
    "ragged_row": (SQUARE.replace("0.5,1,0.3", "0.5,1,0.3,0.9"),
                   "row 3 ('curvature') has 4 values, the header names 3 tasks"),
    "too_few_shared": (",egomotion,jigsaw,normal\negomotion,1,0.5,0.2\njigsaw,0.5,1,0.3\nnormal,0.2,0.3,1\n",
                       "only 1 task(s) shared with the Taskonomy ground truth"),
    "header_only": (",normal,curvature\n", "needs a header row of tasks and at least one row of values"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_matrix_exits_2_naming_file_and_problem(case, tmp_path, capsys):
    text, problem = MALFORMED[case]
    path = _write(tmp_path / f"{case}.csv", text)
    code, out, err = _run(["score", path, "--groundtruth", NO_GROUNDTRUTH], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tasksim: error: {path}: ")
    assert problem in lines[0]
    assert out == ""


def test_missing_file_and_transferability_need_not_be_square(tmp_path, capsys):
    code, _, err = _run(["score", tmp_path / "absent.csv"], capsys)
    assert code == 2 and err.strip() == f"tasksim: error: {tmp_path / 'absent.csv'}: no such file"
    rect = _write(tmp_path / "rect.csv", ",normal,curvature\nnormal,1,0.5\ncurvature,0.5,1\nreshading,0.2,0.3\n")
    m = matrixscore.read_task_matrix(rect, "transferability")
    assert m.shape == (3, 2) and list(m.index) == ["normal", "curvature", "reshading"]
    with pytest.raises(matrixscore.MatrixFileError, match="must be square"):
        matrixscore.read_task_matrix(rect, "similarity")


def test_similarity_columns_follow_the_index_order(tmp_path):
    path = _write(tmp_path / "m.csv", ",curvature,normal,reshading\nnormal,0.5,1,0.2\n"
                                      "curvature,1,0.5,0.3\nreshading,0.3,0.2,1\n")
    m = matrixscore.read_task_matrix(path)
    assert list(m.columns) == list(m.index) == ["normal", "curvature", "reshading"]
    assert np.allclose(np.diag(m.to_numpy()), 1.0) and m.loc["curvature", "reshading"] == 0.3


def test_unusable_groundtruth_source_exits_2(tmp_path, capsys):
    path = _write(tmp_path / "m.csv", SQUARE)
    code, _, err = _run(["score", path, "--groundtruth", tmp_path / "no-mirror"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"ground truth {tmp_path / 'no-mirror'}" in err and "all_affinities_16k.pkl" in err
    # a mirror with a corrupted file: refused by its SHA-256 before anything is unpickled
    bad = tmp_path / "bad-mirror" / "affinities"
    bad.mkdir(parents=True)
    (bad / "all_affinities_16k.pkl").write_bytes(b"not the Taskonomy pickle")
    code, _, err = _run(["score", path, "--groundtruth", tmp_path / "bad-mirror"], capsys)
    assert code == 2 and "SHA-256 mismatch" in err and len(err.strip().splitlines()) == 1


@pytest.mark.shared
def test_groundtruth_from_file_and_http_urls_matches_the_directory(tmp_path, shared_taskonomy):
    import functools
    import http.server
    import threading

    m = _similarity(seed=5)
    ref = matrixscore.score_task_matrix(m, matrixscore.load_groundtruth(shared_taskonomy))
    via_file = matrixscore.load_groundtruth(shared_taskonomy.resolve().as_uri())
    pd.testing.assert_frame_equal(matrixscore.score_task_matrix(m, via_file), ref)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_taskonomy))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        cache = tmp_path / "cache"
        via_http = matrixscore.load_groundtruth(url, cache)
    finally:
        server.shutdown()
        server.server_close()
    pd.testing.assert_frame_equal(matrixscore.score_task_matrix(m, via_http), ref)
    # downloaded once into the cache, under the results/ layout, and verified there
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.pkl")) == [
        "affinities/all_affinities.pkl", "affinities/all_affinities_16k.pkl", "winrates/wins_vs_pixels_16k.pkl"]
