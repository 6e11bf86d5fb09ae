"""Tests of the metrics' numerical core (plugins/ganctl_metrics/stats.py), each against an
independent reference written here (the classic sqrtm formula, loops) or a closed form."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from ganctl_metrics import (
    c2st,
    class_accuracy,
    feature_statistics,
    frechet_details,
    frechet_distance,
    inception_score,
    kid,
    prdc,
    stats,
)

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------
# references


def reference_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """The classic formula (pytorch-fid): sqrtm of the product, eps*I when it is not finite."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean.real))


def random_covariance(rng, d, rank, scale=1.0):
    """A PSD (d, d) matrix of the given rank, as a sample covariance would be."""
    factor = rng.standard_normal((d, rank)) * rng.uniform(0.2, 2.0, size=rank)
    return scale * factor @ factor.T / rank


def reference_kid(real, fake, subsets, subset_size, seed):
    """Unbiased MMD² with (x.y/d + 1)^3, pair by pair; the same draws as the docstring states."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
        values.append(xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m))
    return float(np.mean(values)), float(np.std(values))


def reference_prdc(real, fake, k):
    """Naeem et al.'s definitions with explicit loops and math.dist."""

    def kth_radius(points, i):
        return sorted(math.dist(points[i], points[j]) for j in range(len(points)) if j != i)[k - 1]

    real_r = [kth_radius(real, i) for i in range(len(real))]
    fake_r = [kth_radius(fake, j) for j in range(len(fake))]
    dist = [[math.dist(x, y) for y in fake] for x in real]
    counts = [sum(dist[i][j] < real_r[i] for i in range(len(real))) for j in range(len(fake))]
    recalled = [any(dist[i][j] < fake_r[j] for j in range(len(fake))) for i in range(len(real))]
    covered = [min(dist[i]) < real_r[i] for i in range(len(real))]
    return {
        "precision": sum(c > 0 for c in counts) / len(fake),
        "recall": sum(recalled) / len(real),
        "density": sum(counts) / (k * len(fake)),
        "coverage": sum(covered) / len(real),
    }


# --------------------------------------------------------------------------------------------
# Fréchet distance


@pytest.mark.parametrize(
    "d, rank1, rank2",
    [
        (1, 1, 1),
        (2, 2, 2),
        (8, 8, 8),
        (32, 32, 32),
        (64, 64, 64),
        (16, 5, 16),
        (32, 32, 10),
        (24, 7, 9),
        (48, 20, 30),
    ],
)
def test_frechet_matches_the_sqrtm_reference(d, rank1, rank2):
    rng = np.random.default_rng(d * 1000 + rank1 * 10 + rank2)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) * 0.5
    sigma1 = random_covariance(rng, d, rank1)
    sigma2 = random_covariance(rng, d, rank2, scale=1.7)
    details = frechet_details(mu1, sigma1, mu2, sigma2)
    expected = reference_frechet(mu1, sigma1, mu2, sigma2)
    assert abs(details["fid"] - expected) <= 1e-6 * abs(expected)
    assert details["fid"] == frechet_distance(mu1, sigma1, mu2, sigma2)
    assert details["fid"] == pytest.approx(details["mean_term"] + details["trace_term"], rel=1e-15)
    assert details["mean_term"] == pytest.approx(float((mu1 - mu2) @ (mu1 - mu2)))
    assert details["eps"] == 0.0  # rank deficiency needs no regularisation
    if rank1 < d:
        assert details["method"] == f"pivoted-cholesky(sigma1, rank={rank1})"
    else:
        assert details["method"] == "cholesky(sigma1)"
    assert details["complex_residue"] < 1e-6  # rounding only: the inputs are PSD


@pytest.mark.parametrize("d, rank1, rank2", [(16, 5, 16), (40, 40, 9), (48, 20, 30), (128, 40, 60)])
def test_frechet_is_exact_for_rank_deficient_covariances(d, rank1, rank2):
    # S1 = A A^T, S2 = B B^T: Tr((S1 S2)^1/2) is the nuclear norm of A^T B (an SVD of a small
    # full-rank matrix, accurate to rounding). sqrtm is off by ~1e-8 here (the square root of
    # the rounding around the zero eigenvalues); the factor of S1's numerical rank and the
    # eigenvalues counted as 0 within rounding of 0 avoid it.
    rng = np.random.default_rng(d + rank1 + rank2)
    a = rng.standard_normal((d, rank1)) / np.sqrt(rank1)
    b = rng.standard_normal((d, rank2)) * 1.3 / np.sqrt(rank2)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    nuclear = np.linalg.svd(a.T @ b, compute_uv=False).sum()
    exact = (mu1 - mu2) @ (mu1 - mu2) + np.sum(a * a) + np.sum(b * b) - 2 * nuclear
    assert frechet_distance(mu1, a @ a.T, mu2, b @ b.T) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("d, rank", [(16, 16), (40, 12)])
def test_frechet_of_identical_statistics_is_zero(d, rank):
    rng = np.random.default_rng(d)
    mu = rng.standard_normal(d)
    sigma = random_covariance(rng, d, rank)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) <= 1e-8
    assert abs(frechet_distance(mu, sigma, mu.copy(), sigma.copy())) <= 1e-8


def test_frechet_of_isotropic_gaussians_has_a_closed_form():
    rng = np.random.default_rng(3)
    d, a, b = 20, 1.5, 0.4
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = float((m1 - m2) @ (m1 - m2)) + d * (a - b) ** 2
    got = frechet_distance(m1, a**2 * np.eye(d), m2, b**2 * np.eye(d))
    assert got == pytest.approx(expected, rel=1e-12)
    # one side degenerate (a point mass): Tr(S1) + 0 - 0
    assert frechet_distance(m1, a**2 * np.eye(d), m1, np.zeros((d, d))) == pytest.approx(d * a**2, rel=1e-12)


@pytest.mark.parametrize("rank1, rank2", [(12, 12), (5, 12), (5, 7)])
def test_frechet_is_symmetric(rank1, rank2):
    rng = np.random.default_rng(rank1 + 100 * rank2)
    mu1, mu2 = rng.standard_normal(12), rng.standard_normal(12)
    s1, s2 = random_covariance(rng, 12, rank1), random_covariance(rng, 12, rank2, scale=3.0)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-10)


def test_frechet_reports_a_complex_residue_and_a_singular_product():
    # sigma2 has a negative eigenvalue (not a covariance): sqrt(-1e-4) = 0.01 is reported
    details = frechet_details(np.zeros(3), np.eye(3), np.zeros(3), np.diag([1.0, 1.0, -1e-4]))
    assert details["complex_residue"] == pytest.approx(1e-2, rel=1e-9)
    assert details["trace_term"] == pytest.approx(3 + 2 - 1e-4 - 2 * 2, rel=1e-12)  # sqrt(-1e-4) -> 0
    assert details["eps"] == 0.0
    # S1 S2 = 0: both singular, the pivoted (rank 1) route, the exact answer with no eps
    details = frechet_details(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([0.0, 4.0]))
    assert details["method"] == "pivoted-cholesky(sigma1, rank=1)"
    assert details["fid"] == pytest.approx(5.0, rel=1e-14)
    assert details["eps"] == 0.0
    assert details["complex_residue"] == 0.0
    # sigma1 indefinite: what the pivoted factor leaves out has diagonal -1, reported as 1
    details = frechet_details(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    assert details["complex_residue"] == 1.0


def test_frechet_falls_back_to_eps_when_the_decomposition_fails(monkeypatch):
    rng = np.random.default_rng(5)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    s1, s2 = random_covariance(rng, 6, 6), random_covariance(rng, 6, 6)
    real = stats._sqrt_product_trace
    calls = []

    def fail_once(a, b):
        calls.append(1)
        if len(calls) == 1:
            raise np.linalg.LinAlgError("did not converge")
        return real(a, b)

    monkeypatch.setattr(stats, "_sqrt_product_trace", fail_once)
    details = frechet_details(mu1, s1, mu2, s2, eps=1e-3)
    assert details["eps"] == 1e-3
    assert details["method"] == "cholesky(sigma1)+eps"
    shift = 1e-3 * np.eye(6)
    assert details["fid"] == pytest.approx(reference_frechet(mu1, s1 + shift, mu2, s2 + shift), rel=1e-9)


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "mu1 and mu2 must have the same length"),
        ((np.zeros(3), np.eye(4), np.zeros(3), np.eye(3)), r"sigma1 must be a square \(3, 3\) matrix"),
        (
            (np.zeros(3), np.eye(3), np.zeros(3), np.ones((3, 2))),
            r"sigma2 must be a square \(3, 3\).*\(3, 2\)",
        ),
        ((np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3)), "mu1 must be a 1-D vector"),
        ((np.zeros(3), np.eye(3), np.array([0, np.nan, 0]), np.eye(3)), "mu2 holds 1 NaN or infinite"),
        ((np.zeros(3), np.diag([1, np.inf, 1]), np.zeros(3), np.eye(3)), "sigma1 holds 1 NaN or infinite"),
        (
            (np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2)),
            "sigma1 is not symmetric",
        ),
        ((np.zeros(0), np.eye(0), np.zeros(0), np.eye(0)), "mu1 is empty"),
        ((["a"], np.eye(1), [0.0], np.eye(1)), "mu1 must be a numeric array"),
    ],
)
def test_frechet_rejects_bad_inputs(args, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(*args)


def test_frechet_rejects_a_bad_eps_and_symmetrises_rounding_asymmetry():
    with pytest.raises(ValueError, match="eps must be a positive"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), eps=0)
    sigma = np.array([[2.0, 0.5], [0.5 + 1e-15, 1.0]])
    exact = np.array([[2.0, 0.5 + 5e-16], [0.5 + 5e-16, 1.0]])
    assert frechet_distance(np.zeros(2), sigma, np.ones(2), np.eye(2)) == pytest.approx(
        frechet_distance(np.zeros(2), exact, np.ones(2), np.eye(2)), rel=1e-14
    )


def test_feature_statistics():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-12)
    assert feature_statistics(x[:, :1])[1].shape == (1, 1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        feature_statistics(x[:1])
    with pytest.raises(ValueError, match="2-D array"):
        feature_statistics(x[0])


# --------------------------------------------------------------------------------------------
# KID


def test_kid_matches_a_pairwise_reference():
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((40, 5)), rng.standard_normal((30, 5)) + 0.3
    for subset_size in (12, 100):  # 100: larger than the data, m = 30
        got = kid(real, fake, subsets=3, subset_size=subset_size, seed=7)
        expected = reference_kid(real, fake, 3, subset_size, 7)
        assert got[0] == pytest.approx(expected[0], abs=1e-10)
        assert got[1] == pytest.approx(expected[1], abs=1e-10)


def test_kid_near_zero_for_one_distribution_positive_for_two():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((2000, 32))
    same = rng.standard_normal((2000, 32))
    mean, std = kid(real, same, subsets=20, subset_size=500)
    assert abs(mean) < std
    shifted = rng.standard_normal((2000, 32)) * 1.2 + 0.3
    mean, std = kid(real, shifted, subsets=20, subset_size=500)
    assert mean > 10 * std > 0
    assert kid(real, shifted, subsets=5, subset_size=100, seed=3) == kid(
        real, shifted, subsets=5, subset_size=100, seed=3
    )


def test_kid_rejects_bad_inputs():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="same number of features"):
        kid(x, np.zeros((10, 4)))
    with pytest.raises(ValueError, match="fake needs at least 2 rows"):
        kid(x, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="subsets must be an integer >= 1"):
        kid(x, x, subsets=0)
    with pytest.raises(ValueError, match="subset_size must be an integer >= 2"):
        kid(x, x, subset_size=1)


# --------------------------------------------------------------------------------------------
# precision, recall, density, coverage


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_matches_a_loop_reference_exactly(k, monkeypatch):
    rng = np.random.default_rng(k)
    real = rng.standard_normal((45, 3))
    fake = rng.standard_normal((37, 3)) * 1.3 + 0.4
    expected = reference_prdc(real, fake, k)
    assert prdc(real, fake, k=k) == expected
    monkeypatch.setattr(stats, "_BLOCK_ELEMENTS", 100)  # many small blocks: the same numbers
    assert prdc(real, fake, k=k) == expected


def test_prdc_is_shift_invariant():
    # far from the origin, |a|² + |b|² - 2 a·b would cancel to noise without centring
    rng = np.random.default_rng(9)
    real, fake = rng.standard_normal((60, 4)), rng.standard_normal((50, 4)) + 0.5
    assert prdc(real + 1e6, fake + 1e6, k=3) == prdc(real, fake, k=3)


def test_prdc_of_identical_sets():
    x = np.random.default_rng(0).standard_normal((300, 8))
    result = prdc(x, x.copy(), k=5)
    assert result["precision"] == result["recall"] == result["coverage"] == 1.0
    assert result["density"] == pytest.approx(1.0, abs=0.01)


def test_prdc_rejects_bad_inputs():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        prdc(x, x, k=0)
    with pytest.raises(ValueError, match="real needs at least 6 rows"):
        prdc(x, np.zeros((10, 2)), k=5)
    with pytest.raises(ValueError, match="same number of features"):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)), k=2)


# --------------------------------------------------------------------------------------------
# Inception Score


def test_inception_score_closed_forms():
    mean, std = inception_score(np.full((100, 7), 1 / 7))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    classes, splits = 10, 5
    labels = np.tile(np.arange(classes), 3 * splits)  # every split uses every class equally
    mean, std = inception_score(np.eye(classes)[labels], splits=splits)
    assert mean == pytest.approx(classes, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-9)
    # one class only in each split: 1
    assert inception_score(np.eye(4)[np.repeat(np.arange(4), 5)], splits=4)[0] == pytest.approx(1.0)


def test_inception_score_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"row 1 sums to 0\.9"):
        inception_score(np.array([[0.5, 0.5], [0.5, 0.4]]), splits=1)
    with pytest.raises(ValueError, match="must be >= 0"):
        inception_score(np.array([[1.5, -0.5]]), splits=1)
    with pytest.raises(ValueError, match=r"splits \(10\) cannot exceed the number of rows \(3\)"):
        inception_score(np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="2-D array"):
        inception_score(np.full(4, 0.25))


# --------------------------------------------------------------------------------------------
# classifier two-sample test


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_c2st(classifier):
    rng = np.random.default_rng(4)
    real = rng.standard_normal((1000, 8))
    same = rng.standard_normal((1000, 8))
    shifted = rng.standard_normal((1000, 8)) + 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing leaks (ConvergenceWarning included)
        alike = c2st(real, same, classifier=classifier, seed=0)
        apart = c2st(real, shifted, classifier=classifier, seed=0)
    assert abs(alike["roc_auc"] - 0.5) < 0.1
    assert abs(alike["accuracy"] - 0.5) < 0.1
    assert apart["roc_auc"] > 0.95 and apart["accuracy"] > 0.85
    assert apart["n_train"] == apart["n_test"] == 1000
    assert apart["classifier"] == classifier and apart["converged"] is True
    assert set(apart) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "n_train",
        "n_test",
        "classifier",
        "converged",
    }
    assert c2st(real, shifted, classifier=classifier, seed=0) == apart  # deterministic


def test_c2st_labels_generated_as_positive():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((200, 2))
    fake = rng.standard_normal((200, 2)) + 5.0  # trivially separable
    result = c2st(real, fake)
    assert result["roc_auc"] == 1.0 and result["precision"] == result["recall"] == 1.0


def test_c2st_rejects_bad_inputs():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="classifier must be 'logistic' or 'mlp'; got 'svm'"):
        c2st(x, x, classifier="svm")
    with pytest.raises(ValueError, match="same number of features"):
        c2st(x, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="real needs at least 20 rows"):
        c2st(x, np.zeros((30, 2)), classifier="mlp")


# --------------------------------------------------------------------------------------------
# class accuracy


def test_class_accuracy():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    result = class_accuracy(probs, np.array([0, 1, 1, 1]))
    assert result["accuracy"] == 0.75
    assert result["per_class"][:2] == [1.0, 2 / 3]
    assert math.isnan(result["per_class"][2])  # never requested
    assert class_accuracy(np.log(probs + 1e-9), [0, 1, 0, 1])["accuracy"] == 1.0  # logits work too


@pytest.mark.parametrize(
    "probs, requested, message",
    [
        (np.eye(3), [0, 1], "requested has 2 labels but probabilities has 3 rows"),
        (np.eye(3), [0, 1, 3], r"must be in \[0, 3\) for 3 classes; got 3"),
        (np.eye(3), [0, -1, 2], "got -1"),
        (np.eye(3), [0.0, 1.0, 2.0], "must hold integer class labels"),
        (np.eye(3), [[0, 1, 2]], "1-D vector of labels"),
        (np.ones(3), [0, 1, 2], "probabilities must be a 2-D array"),
    ],
)
def test_class_accuracy_rejects_bad_inputs(probs, requested, message):
    with pytest.raises(ValueError, match=message):
        class_accuracy(probs, requested)


def test_importing_the_package_is_cheap():
    code = (
        "import sys, ganctl_metrics\n"
        "heavy = [m for m in ('scipy', 'sklearn', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env_path = str(ROOT / "plugins")
    subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r})\n" + code], check=True
    )
