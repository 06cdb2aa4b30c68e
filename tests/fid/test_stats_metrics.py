"""Streaming statistics against numpy, FID against each tool's function (scipy sqrtm / numpy eigvals /
torch eigvals) to 1e-6 relative, IS and KID against torch-fidelity's own functions, .npz stats files."""

import numpy as np
import pytest
import torch

from inception_core.fid import (
    FeatureStats,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    load_stats,
    save_stats,
)


def _features(n, d, seed, shift=0.0):
    """Correlated, non-centred features (a random mixing of a ReLU'd Gaussian), as pool3 features are."""
    g = np.random.default_rng(seed)
    mix = g.normal(size=(d, d)) / np.sqrt(d)
    return np.maximum(g.normal(size=(n, d)) @ mix + shift, 0) + 0.5


@pytest.fixture(scope="module")
def two_sets():
    a, b = _features(600, 128, 1), _features(500, 128, 2, shift=0.3)
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
    return a, b, stats


def test_streaming_stats_equal_numpy_for_any_batching(two_sets):
    a = two_sets[0]
    for batches in ([600], [1] * 7 + [593], [64] * 9 + [24]):
        s = FeatureStats(128)
        start = 0
        for n in batches:
            s.update(torch.from_numpy(a[start:start + n]).float() if n == 1 else torch.from_numpy(a[start:start + n]))
            start += n
        assert s.count == 600
        # the one float32 row rounds its features: compare against numpy on the same values
        ref = a.copy()
        if batches[0] == 1:
            ref[:7] = ref[:7].astype(np.float32)
        np.testing.assert_allclose(s.mean.numpy(), ref.mean(0), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(s.covariance().numpy(), np.cov(ref, rowvar=False), rtol=1e-10, atol=1e-12)


def test_merge_equals_one_pass(two_sets):
    a = torch.from_numpy(two_sets[0])
    whole, left, right = FeatureStats(128), FeatureStats(128), FeatureStats(128)
    whole.update(a)
    left.update(a[:250])
    right.update(a[250:])
    left.merge(right)
    assert left.count == 600
    torch.testing.assert_close(left.covariance(), whole.covariance(), rtol=1e-12, atol=1e-13)


def test_stats_errors():
    s = FeatureStats(4)
    with pytest.raises(ValueError, match="features: expected"):
        s.update(torch.zeros(3, 5))
    s.update(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="at least 2"):
        s.covariance()


def test_fid_matches_every_tool(two_sets):
    from cleanfid.fid import frechet_distance as clean_fid_fd
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    from torchmetrics.image.fid import _compute_fid

    (mu1, s1), (mu2, s2) = two_sets[2]
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours > 1.0  # not a tiny FID: the relative comparison means something
    tools = {
        "pytorch-fid": calculate_frechet_distance(mu1, s1, mu2, s2),
        "clean-fid": clean_fid_fd(mu1, s1, mu2, s2),
        "torch-fidelity": fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)[
            "frechet_inception_distance"],
        "torchmetrics": _compute_fid(*(torch.from_numpy(t) for t in (mu1, s1, mu2, s2))).item(),
    }
    for name, value in tools.items():
        assert abs(ours - value) <= 1e-6 * abs(value), (name, ours, value)
    # tensors in, same number; self-distance 0 (pytorch-fid#26 reports -4.8e-5 from sqrtm)
    assert frechet_distance(*(torch.from_numpy(t) for t in (mu1, s1, mu2, s2))) == pytest.approx(ours, rel=1e-12)
    assert abs(frechet_distance(mu1, s1, mu1, s1)) <= 1e-9 * np.trace(s1)


def test_fid_rank_deficient_covariances():
    # fewer images than dimensions (a small evaluation set): S1 S2 is singular
    a, b = _features(40, 128, 3), _features(30, 128, 4, shift=0.2)
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    stats = [{"mu": x.mean(0), "sigma": np.cov(x, rowvar=False)} for x in (a, b)]
    want = fid_statistics_to_metric(*stats, False)["frechet_inception_distance"]
    got = frechet_distance(stats[0]["mu"], stats[0]["sigma"], stats[1]["mu"], stats[1]["sigma"])
    assert got == pytest.approx(want, rel=1e-6)


def test_fid_bad_shapes():
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))


def test_inception_score_matches_torch_fidelity():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(103, 1008, generator=torch.Generator().manual_seed(5)) * 3
    for splits in (10, 3):
        want = isc_features_to_metric(logits, splits=splits)
        mean, std = inception_score(logits, splits=splits)
        assert mean == pytest.approx(want["inception_score_mean"], rel=1e-12)
        assert std == pytest.approx(want["inception_score_std"], rel=1e-9)
    with pytest.raises(ValueError, match="splits"):
        inception_score(logits[:5], splits=10)


def test_kid_matches_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    a = torch.from_numpy(_features(120, 64, 6))
    b = torch.from_numpy(_features(90, 64, 7, shift=0.2))
    want = kid_features_to_metric(a, b, kid_subsets=20, kid_subset_size=50, kid_degree=3, kid_gamma=None,
                                  kid_coef0=1, verbose=False, rng_seed=2020, kid_kernel="poly",
                                  kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    mean, std = kernel_inception_distance(a, b, subsets=20, subset_size=50)
    assert mean == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-9)
    assert std == pytest.approx(want["kernel_inception_distance_std"], rel=1e-9)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(a, b, subset_size=100)


def test_npz_round_trip_readable_by_pytorch_fid(two_sets, tmp_path):
    from pytorch_fid.fid_score import compute_statistics_of_path

    mu, sigma = two_sets[2][0]
    path = str(tmp_path / "stats.npz")
    save_stats(path, torch.from_numpy(mu), torch.from_numpy(sigma))
    m, s = compute_statistics_of_path(path, None, 1, 128, "cpu")
    assert np.array_equal(m, mu) and np.array_equal(s, sigma)
    m2, s2 = load_stats(path)
    assert np.array_equal(m2, mu) and np.array_equal(s2, sigma)
    np.savez(tmp_path / "other.npz", mean=mu)
    with pytest.raises(ValueError, match="not an FID stats file"):
        load_stats(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read"):
        load_stats(tmp_path / "junk.npz")
