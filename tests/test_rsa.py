"""RSA: RDMs (streamed and in memory), RDM comparison, invariances, references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from tasksim.similarity.rsa import (
    DegenerateFeaturesError,
    accumulate_gram,
    compare_rdms,
    iter_column_blocks,
    kendall_tau_a,
    rdm,
    rdm_from_gram,
    rdm_streamed,
    rsa_matrix,
    upper_triangle,
)


def _features(rng: np.random.Generator, n: int = 30, d: int = 200) -> np.ndarray:
    # image-specific offsets and a shared mean per feature make centring and Pearson matter
    return (rng.standard_normal((n, d)) + rng.standard_normal((n, 1)) * 2.0
            + rng.uniform(-3, 3, size=(1, d)))


def _normalise_ref(x: np.ndarray, normalization: str) -> np.ndarray:
    x = x.astype(np.float64)
    if normalization == "none":
        return x
    x = x - x.mean(axis=0)
    if normalization == "zscore":
        x = x / x.std(axis=0)
    return x


def _rdm_loop(x: np.ndarray, normalization: str, distance: str) -> np.ndarray:
    """Direct O(N^2) double loop, independent of the Gram formulation."""
    z = _normalise_ref(x, normalization)
    n = z.shape[0]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            a, b = z[i], z[j]
            if distance == "pearson":
                out[i, j] = 1.0 - np.corrcoef(a, b)[0, 1]
            elif distance == "cosine":
                out[i, j] = 1.0 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)
            else:
                out[i, j] = np.linalg.norm(a - b)
    np.fill_diagonal(out, 0.0)
    return out


@pytest.mark.parametrize("normalization", ["none", "center", "zscore"])
@pytest.mark.parametrize("distance", ["pearson", "euclidean", "cosine"])
def test_rdm_matches_double_loop(normalization: str, distance: str) -> None:
    x = _features(np.random.default_rng(0))
    got = rdm(x, normalization, distance)
    ref = _rdm_loop(x, normalization, distance)
    np.testing.assert_allclose(got, ref, atol=1e-9, rtol=1e-9)
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 0)


@pytest.mark.parametrize("block", [1, 7, 64, 199, 1000])
@pytest.mark.parametrize("normalization", ["none", "center", "zscore"])
def test_streamed_equals_in_memory_float64(block: int, normalization: str) -> None:
    x = _features(np.random.default_rng(1))
    full = rdm(x, normalization, "pearson", block_columns=10_000)
    streamed = rdm_streamed(iter_column_blocks(x, block), normalization, "pearson")
    np.testing.assert_allclose(streamed, full, atol=1e-12)


@pytest.mark.parametrize("block", [3, 50, 256])
@pytest.mark.parametrize("distance", ["pearson", "euclidean", "cosine"])
def test_streamed_float16_matches_float64_reference(block: int, distance: str) -> None:
    rng = np.random.default_rng(2)
    x16 = (_features(rng, 40, 512) + 3.0).astype(np.float16)  # common offset: the shift path
    ref = _rdm_loop(x16.astype(np.float64), "none", distance)
    got = rdm_streamed(iter_column_blocks(x16, block), "none", distance)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(got, ref, atol=2e-5 * scale)
    got_c = rdm_streamed(iter_column_blocks(x16, block), "center", distance)
    np.testing.assert_allclose(got_c, _rdm_loop(x16.astype(np.float64), "center", distance),
                               atol=2e-5 * scale)


def test_float64_compute_is_exact_for_nearly_constant_rows() -> None:
    rng = np.random.default_rng(13)
    x16 = (np.maximum(_features(rng, 40, 512), 0) + 1.0).astype(np.float16)  # some rows ~constant
    ref = _rdm_loop(x16.astype(np.float64), "none", "pearson")
    got = rdm_streamed(iter_column_blocks(x16, 50), "none", "pearson", compute_dtype="float64")
    np.testing.assert_allclose(got, ref, atol=1e-10)
    got32 = rdm_streamed(iter_column_blocks(x16, 50), "none", "pearson")
    np.testing.assert_allclose(got32, ref, atol=5e-3)  # float32: documented conditioning loss


def test_blocks_in_any_order_and_4d_input() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 4, 5, 5))
    flat = x.reshape(12, -1)
    blocks = [flat[:, 60:], flat[:, :25], flat[:, 25:60]]
    np.testing.assert_allclose(rdm_streamed(blocks), rdm(x), atol=1e-12)


def test_agrees_with_rsatoolbox() -> None:
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(4)
    xs = [_features(rng, 25, 80) for _ in range(2)]
    ours = [rdm(x) for x in xs]
    theirs = []
    for x in xs:
        data = rsatoolbox.data.Dataset(x - x.mean(axis=0))  # rsatoolbox does not centre features
        r = rsatoolbox.rdm.calc_rdm(data, method="correlation")
        theirs.append(r)
        np.testing.assert_allclose(r.get_matrices()[0], ours[-1] if len(theirs) == 2 else ours[0],
                                   atol=1e-10)
    for ours_m, theirs_m in (("spearman", "spearman"), ("pearson", "corr")):
        ref = rsatoolbox.rdm.compare(theirs[0], theirs[1], method=theirs_m)[0, 0]
        assert compare_rdms(ours[0], ours[1], ours_m) == pytest.approx(ref, abs=1e-10)


def test_spearman_matches_scipy_and_matrix_is_consistent() -> None:
    rng = np.random.default_rng(5)
    rdms = [rdm(_features(rng, 20, 50)) for _ in range(4)]
    m = rsa_matrix(rdms)
    for i in range(4):
        for j in range(4):
            ref = 1.0 if i == j else scipy.stats.spearmanr(upper_triangle(rdms[i]),
                                                           upper_triangle(rdms[j])).statistic
            assert m[i, j] == pytest.approx(ref, abs=1e-12)
    assert np.array_equal(m, m.T) and np.all(np.diag(m) == 1.0)
    p = rsa_matrix(rdms, "pearson")
    ref = scipy.stats.pearsonr(upper_triangle(rdms[0]), upper_triangle(rdms[2])).statistic
    assert p[0, 2] == pytest.approx(ref, abs=1e-12)


def _tau_a_loop(x: np.ndarray, y: np.ndarray) -> float:
    n = len(x)
    s = sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i in range(n) for j in range(i + 1, n))
    return s / (n * (n - 1) / 2)


def test_kendall_tau_a_matches_direct_count_with_ties() -> None:
    rng = np.random.default_rng(6)
    for _ in range(5):
        x = rng.integers(0, 6, 60).astype(float)  # many ties: tau-a != tau-b
        y = x + rng.integers(-3, 4, 60)
        assert kendall_tau_a(x, y) == pytest.approx(_tau_a_loop(x, y), abs=1e-12)
        assert kendall_tau_a(x, y) != pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=1e-4)
    assert kendall_tau_a(np.ones(5), np.arange(5.0)) == 0.0
    rdms = [rdm(_features(rng, 12, 30)) for _ in range(3)]
    m = rsa_matrix(rdms, "kendall_taua")
    assert m[0, 1] == pytest.approx(_tau_a_loop(upper_triangle(rdms[0]), upper_triangle(rdms[1])))
    assert np.all(np.diag(m) == 1.0) and np.array_equal(m, m.T)


def test_invariances_of_centred_pearson_rdm() -> None:
    rng = np.random.default_rng(7)
    x = _features(rng, 30, 100)
    base = rdm(x)
    perm = x[:, rng.permutation(100)]
    np.testing.assert_allclose(rdm(perm), base, atol=1e-12)
    np.testing.assert_allclose(rdm(x * 7.5), base, atol=1e-12)
    shifted = x.copy()
    shifted[:, 13] += 100.0
    np.testing.assert_allclose(rdm(shifted), base, atol=1e-10)
    for other in (perm, x * 7.5, shifted):
        assert compare_rdms(base, rdm(other)) == pytest.approx(1.0, abs=1e-12)


def test_not_invariant_to_orthogonal_rotation() -> None:
    rng = np.random.default_rng(8)
    x = _features(rng, 30, 100)  # image offsets: rotation turns them into non-constant patterns
    q, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    base, rot = rdm(x), rdm(x @ q)
    assert np.abs(base - rot).max() > 0.1
    assert compare_rdms(base, rot) < 0.99
    # whereas the cosine / Euclidean RDMs of centred features are rotation invariant
    np.testing.assert_allclose(rdm(x @ q, distance="cosine"), rdm(x, distance="cosine"), atol=1e-10)


def test_self_similarity_is_one() -> None:
    r = rdm(_features(np.random.default_rng(9)))
    for method in ("spearman", "pearson", "kendall_taua"):
        assert compare_rdms(r, r, method) == pytest.approx(1.0, abs=1e-12)


def test_constant_rows_raise_clear_error() -> None:
    x = _features(np.random.default_rng(10), 10, 40)
    x[3] = 5.0  # constant image (no normalisation keeps it constant)
    with pytest.raises(DegenerateFeaturesError, match=r"rows \[3\]"):
        rdm(x, "none", "pearson")
    x16 = x.astype(np.float16)
    with pytest.raises(DegenerateFeaturesError, match="constant"):
        rdm_streamed(iter_column_blocks(x16, 7), "none", "pearson")
    z = x.copy()
    z[4] = 0.0
    with pytest.raises(DegenerateFeaturesError, match="all-zero"):
        rdm(z, "none", "cosine")
    assert np.all(np.isfinite(rdm(x, "none", "euclidean")))


def test_zscore_constant_feature_is_zeroed() -> None:
    x = _features(np.random.default_rng(11), 15, 30)
    x[:, 5] = 2.0
    stats = accumulate_gram(iter_column_blocks(x, 8), "zscore")
    assert stats.n_constant_features == 1
    ref = x.copy()
    ref = (ref - ref.mean(0)) / np.where(ref.std(0) == 0, 1, ref.std(0))
    ref[:, 5] = 0.0
    np.testing.assert_allclose(rdm_from_gram(stats), _rdm_loop(ref, "none", "pearson"), atol=1e-10)


def test_bad_arguments() -> None:
    x = np.random.default_rng(12).standard_normal((5, 6))
    with pytest.raises(ValueError, match="normalization"):
        rdm(x, "whiten")
    with pytest.raises(ValueError, match="distance"):
        rdm(x, distance="manhattan")
    with pytest.raises(ValueError, match="empty"):
        accumulate_gram([])
    with pytest.raises(ValueError, match="number of images"):
        accumulate_gram([x, x[:4]])


def test_default_blocks_cover_all_columns_once() -> None:
    from tasksim.similarity.rsa import default_block_columns

    assert default_block_columns(500) == 256 * 2**20 // (4 * 500)
    x = np.arange(3 * 1000.0).reshape(3, 10, 100)
    blocks = list(iter_column_blocks(x, 300))
    assert [b.shape[1] for b in blocks] == [300, 300, 300, 100]
    np.testing.assert_array_equal(np.hstack(blocks), x.reshape(3, -1))
    assert len(list(iter_column_blocks(x))) == 1


def test_cast_into_converts_float16_exactly_like_numpy():
    """The torch fast path of float16 -> float32/64 conversion (strided views included) is exact."""
    from tasksim.similarity.rsa import cast_into

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((7, 40)) * 1e3).astype(np.float16)
    x[0, 5:8] = [np.inf, -np.inf, 6e-8]  # infinities and a subnormal, inside the view
    view = x[:, 5:31]  # non-contiguous rows
    for dtype in (np.float32, np.float64):
        out = cast_into(np.empty(view.shape, dtype=dtype), view)
        np.testing.assert_array_equal(out, view.astype(dtype))
    nan = cast_into(np.empty(3, np.float32), np.array([np.nan, 1, 2], np.float16))
    assert np.isnan(nan[0]) and nan[1] == 1
