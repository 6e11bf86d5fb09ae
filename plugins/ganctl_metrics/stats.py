"""The numerical core of ganctl's evaluation metrics: pure NumPy / SciPy / scikit-learn.

Every function takes plain arrays (features or class probabilities that something else
computed) and returns Python floats, in tuples or dicts; none knows about Keras, images or
recipes. Inputs are
validated first: a wrong shape, a NaN or an out-of-range argument raises ``ValueError`` with a
message that names the function, the argument and what is wrong.

* :func:`feature_statistics`, :func:`frechet_distance`, :func:`frechet_details`: FID's
  Fréchet distance between two Gaussians (Heusel et al. 2017), by an eigenvalue route that
  avoids a general matrix square root.
* :func:`kid`: the Kernel Inception Distance (Bińkowski et al. 2018), unbiased MMD² with a
  cubic polynomial kernel, averaged over random subsets.
* :func:`prdc`: precision, recall, density and coverage (Naeem et al. 2020), chunked.
* :func:`inception_score`: IS (Salimans et al. 2016) over splits.
* :func:`c2st`: a classifier two-sample test (Lopez-Paz & Oquab 2017).
* :func:`class_accuracy`: how often a classifier agrees with a conditional generator's labels.

NumPy is the only import at module level; SciPy and scikit-learn are imported by the functions
that use them, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np

__all__ = [
    "c2st",
    "class_accuracy",
    "feature_statistics",
    "frechet_details",
    "frechet_distance",
    "inception_score",
    "kid",
    "prdc",
]

_EPS64 = float(np.finfo(np.float64).eps)
# Elements of float64 scratch per block of pairwise distances in prdc (32 MiB).
_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# validation helpers


def _as_float_array(func: str, name: str, value: Any, ndim: int) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions, every element finite."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{func}: {name} must be a numeric array ({error})") from None
    if array.ndim != ndim:
        kind = {1: "a 1-D vector", 2: "a 2-D array"}[ndim]
        raise ValueError(f"{func}: {name} must be {kind}; got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{func}: {name} is empty (shape {array.shape})")
    if not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{func}: {name} holds {bad} NaN or infinite value(s)")
    return array


def _features(func: str, name: str, value: Any, min_rows: int = 2) -> np.ndarray:
    """A finite (n, d) float64 feature matrix with at least ``min_rows`` rows."""
    array = _as_float_array(func, name, value, 2)
    if array.shape[0] < min_rows:
        raise ValueError(f"{func}: {name} needs at least {min_rows} rows (samples); got {array.shape[0]}")
    return array


def _feature_pair(func: str, real: Any, fake: Any, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two feature matrices with the same number of columns."""
    real = _features(func, "real", real, min_rows)
    fake = _features(func, "fake", fake, min_rows)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"{func}: real and fake must have the same number of features (columns); "
            f"got {real.shape[1]} and {fake.shape[1]}"
        )
    return real, fake


def _positive_int(func: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{func}: {name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _probabilities(func: str, value: Any, tolerance: float = 1e-3) -> np.ndarray:
    """A finite (n, k) array of non-negative rows that each sum to 1 within ``tolerance``."""
    probs = _as_float_array(func, "probabilities", value, 2)
    if probs.min() < 0:
        row = int(np.argmin(probs.min(axis=1)))
        raise ValueError(
            f"{func}: probabilities must be >= 0; row {row} holds {probs[row].min():g} "
            "(pass softmax outputs, not logits)"
        )
    sums = probs.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > tolerance:
        raise ValueError(
            f"{func}: each row of probabilities must sum to 1 (within {tolerance:g}); "
            f"row {worst} sums to {sums[worst]:.6g} (pass softmax outputs, not logits)"
        )
    return probs


# --------------------------------------------------------------------------------------------
# Fréchet distance


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature matrix, as FID uses them.

    ``features`` is (n, d), one sample per row, n >= 2. Returns ``(mu, sigma)`` in float64:
    ``mu`` (d,) is the column mean and ``sigma`` (d, d) the unbiased sample covariance
    ``(X - mu)^T (X - mu) / (n - 1)`` (``np.cov(features, rowvar=False)``).
    """
    x = _features("feature_statistics", "features", features)
    mu = x.mean(axis=0)
    sigma = np.atleast_2d(np.cov(x, rowvar=False))
    return mu, sigma


def _covariance(func: str, name: str, value: Any, d: int) -> np.ndarray:
    """A finite, symmetric (d, d) float64 matrix (symmetrised when off by rounding only)."""
    sigma = _as_float_array(func, name, value, 2)
    if sigma.shape != (d, d):
        raise ValueError(
            f"{func}: {name} must be a square ({d}, {d}) matrix to match the means of length "
            f"{d}; got shape {sigma.shape}"
        )
    worst = _asymmetry(sigma)
    if worst:
        scale = float(np.abs(sigma).max())
        if worst > 1e-6 * scale:
            raise ValueError(
                f"{func}: {name} is not symmetric: max |{name} - {name}.T| = {worst:.3g} "
                f"(the largest entry is {scale:.3g}); pass a covariance matrix"
            )
        sigma = 0.5 * (sigma + sigma.T)  # rounding-level asymmetry: symmetrise
    return sigma


def _asymmetry(matrix: np.ndarray, block: int = 64) -> float:
    """``max |A - A^T|``, compared block against block (3x faster than ``A - A.T`` at d=2048)."""
    n = matrix.shape[0]
    worst = 0.0
    for i in range(0, n, block):
        for j in range(i, n, block):
            diff = matrix[i : i + block, j : j + block] - matrix[j : j + block, i : i + block].T
            worst = max(worst, float(np.abs(diff).max()))
    return worst


def _sqrt_trace(eigenvalues: np.ndarray) -> tuple[float, float]:
    """``sum(sqrt(lambda))`` over the eigenvalues of a PSD matrix, and the imaginary residue.

    Eigenvalues within ``d * eps * max|lambda|`` of zero are rounding noise around an exact 0
    (a rank-deficient covariance), and count as 0: their square roots would add noise of order
    ``sqrt(eps)``. The residue is ``sqrt(-min(lambda))`` when the smallest is negative (the
    imaginary part a complex square root would have had), else 0.
    """
    if not np.isfinite(eigenvalues).all():
        raise FloatingPointError("non-finite eigenvalues")
    if eigenvalues.size == 0:
        return 0.0, 0.0
    top = float(np.abs(eigenvalues).max())
    lowest = float(eigenvalues.min())
    residue = math.sqrt(-lowest) if lowest < 0 else 0.0
    noise = eigenvalues.size * _EPS64 * top
    kept = eigenvalues[eigenvalues > noise]
    return float(np.sqrt(kept).sum()), residue


def _sqrt_product_trace(sigma1: np.ndarray, sigma2: np.ndarray) -> tuple[float, float, str]:
    """``Tr((S1 S2)^1/2)``, the imaginary residue, and the method used.

    The eigenvalues of ``S1 S2`` are those of the symmetric PSD ``F^T S2 F`` for any factor
    ``S1 = F F^T``. With S1 positive definite, F is its Cholesky factor (LAPACK potrf),
    ``F^T S2 F`` one sygst call and its eigenvalues one symmetric eigenvalue solve (syevd,
    no eigenvectors): about 2.7 d³ flops in all. Otherwise F (d, r) comes from a pivoted
    Cholesky factorisation (pstrf), which stops at S1's numerical rank r, and ``F^T S2 F`` is
    r x r: cheaper still when r is well below d.
    """
    from scipy.linalg import eigh, lapack

    # .T: the same symmetric matrix, Fortran-ordered, so LAPACK's copy is a plain one
    factor, info = lapack.dpotrf(sigma1.T, lower=1, clean=1)
    if info == 0:
        product, info = lapack.dsygst(sigma2.T, factor, itype=2, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"dsygst failed (info={info})")
        eigenvalues = eigh(
            product, eigvals_only=True, lower=True, overwrite_a=True, check_finite=False, driver="evd"
        )
        total, residue = _sqrt_trace(eigenvalues)
        return total, residue, "cholesky(sigma1)"

    # S1 singular: S1[p][:, p] = L L^T with L (d, r) lower trapezoidal, r = numerical rank
    # (pivots below LAPACK's d * eps * max(diag) stop it); F = L with its rows un-permuted.
    packed, pivots, rank, info = lapack.dpstrf(sigma1.T, lower=1)
    if info < 0:
        raise np.linalg.LinAlgError(f"dpstrf failed (info={info})")
    factor = np.zeros((sigma1.shape[0], rank))
    factor[pivots - 1] = np.tril(packed[:, :rank])
    # What the factor leaves out has a diagonal >= 0 (up to rounding) when S1 is PSD.
    left_out = float((np.diag(sigma1) - np.einsum("ij,ij->i", factor, factor)).min())
    residue = math.sqrt(-left_out) if left_out < 0 else 0.0
    method = f"pivoted-cholesky(sigma1, rank={rank})"
    if rank == 0:
        return 0.0, residue, method
    product = factor.T @ (sigma2 @ factor)
    eigenvalues = eigh(product, eigvals_only=True, overwrite_a=True, check_finite=False, driver="evd")
    total, residue2 = _sqrt_trace(eigenvalues)
    return total, max(residue, residue2), method


def frechet_details(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, eps: float = 1e-6) -> dict[str, Any]:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), with diagnostics.

    ``d² = |mu1 - mu2|² + Tr(S1 + S2 - 2 (S1 S2)^½)`` (Fréchet 1957; Dowson & Landau 1982), the
    squared 2-Wasserstein distance between the Gaussians; FID (Heusel et al. 2017, "GANs
    trained by a two time-scale update rule converge to a local Nash equilibrium") is this
    distance between Inception-v3 pool features of real and generated images.

    Method: instead of ``scipy.linalg.sqrtm(S1 @ S2)`` (a Schur decomposition of a
    non-symmetric matrix; tens of seconds at d = 2048), ``Tr((S1 S2)^½) = Σ sqrt(λ_i)`` where
    ``λ_i`` are the eigenvalues of ``S1 S2``, which equal those of the symmetric positive
    semi-definite ``L^T S2 L`` for ``S1 = L L^T`` (Cholesky). Only eigenvalues are computed
    (LAPACK potrf + sygst + syevd). If S1 is singular, a pivoted Cholesky factor F (d, r) of
    its numerical rank r replaces L (``F^T S2 F`` is then r x r). Eigenvalues within
    ``d·eps_machine·max|λ|`` of 0 are rounding noise around an exact zero and count as 0.
    A singular product therefore needs no regularisation: the result is the exact limit.

    Returns a dict:

    * ``fid``: ``mean_term + trace_term``. Can be slightly negative (rounding) when the two
      distributions are identical.
    * ``mean_term``: ``|mu1 - mu2|²``.
    * ``trace_term``: ``Tr(S1) + Tr(S2) - 2 Σ sqrt(λ_i)``.
    * ``complex_residue``: the largest imaginary part met, i.e. ``sqrt(-λ)`` for the most
      negative eigenvalue λ of ``L^T S2 L`` (whose square root is taken), and on the pivoted
      route also ``sqrt(-δ)`` for the most negative diagonal entry δ of the part of S1 the
      factor leaves out. Rounding gives about ``sqrt(eps_machine · max λ)`` for rank-deficient
      inputs; much more means an input is not positive semi-definite (not a covariance).
      Reported, never hidden: negative eigenvalues count as 0 in the sum.
    * ``eps``: what was added to both diagonals: 0.0 unless the decomposition failed (LAPACK
      did not converge, or produced non-finite values), in which case it is retried once on
      ``S1 + eps·I`` and ``S2 + eps·I``, the usual fallback (pytorch-fid); all three terms
      then refer to the regularised covariances (pytorch-fid keeps the unregularised traces).
    * ``method``: ``"cholesky(sigma1)"`` or ``"pivoted-cholesky(sigma1, rank=r)"``, with
      ``"+eps"`` appended when the fallback was used.

    Raises ``ValueError`` for shapes that do not match, a non-square or non-symmetric
    covariance, non-finite values, or a decomposition that fails even with ``eps``.
    """
    func = "frechet_distance"
    mu1 = _as_float_array(func, "mu1", mu1, 1)
    mu2 = _as_float_array(func, "mu2", mu2, 1)
    if mu1.shape != mu2.shape:
        raise ValueError(f"{func}: mu1 and mu2 must have the same length; got {mu1.size} and {mu2.size}")
    d = mu1.size
    sigma1 = _covariance(func, "sigma1", sigma1, d)
    sigma2 = _covariance(func, "sigma2", sigma2, d)
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.integer | np.floating):
        raise ValueError(f"{func}: eps must be a positive finite number; got {eps!r}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"{func}: eps must be a positive finite number; got {eps!r}")

    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    added = 0.0
    try:
        with np.errstate(all="ignore"):
            sqrt_trace, residue, method = _sqrt_product_trace(sigma1, sigma2)
    except (np.linalg.LinAlgError, FloatingPointError):
        added = float(eps)
        shift = added * np.eye(d)
        sigma1 = sigma1 + shift
        sigma2 = sigma2 + shift
        try:
            with np.errstate(all="ignore"):
                sqrt_trace, residue, method = _sqrt_product_trace(sigma1, sigma2)
        except (np.linalg.LinAlgError, FloatingPointError) as error:
            raise ValueError(
                f"{func}: the eigenvalues of sigma1 @ sigma2 could not be computed, even with "
                f"eps={eps:g} added to the diagonals ({error}); check the covariances' scale"
            ) from None
        method += "+eps"
    trace_term = float(np.trace(sigma1) + np.trace(sigma2) - 2.0 * sqrt_trace)
    if not math.isfinite(trace_term):
        raise ValueError(f"{func}: the trace term overflowed; check the covariances' scale")
    return {
        "fid": mean_term + trace_term,
        "mean_term": mean_term,
        "trace_term": trace_term,
        "complex_residue": residue,
        "eps": added,
        "method": method,
    }


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, eps: float = 1e-6) -> float:
    """The Fréchet distance ``|mu1 - mu2|² + Tr(S1 + S2 - 2 (S1 S2)^½)`` (FID on features).

    The value of :func:`frechet_details`'s ``fid``; see there for the method, ``eps`` and the
    errors raised.
    """
    return frechet_details(mu1, sigma1, mu2, sigma2, eps=eps)["fid"]


# --------------------------------------------------------------------------------------------
# KID


def _cubic_kernel_sum(a: np.ndarray, b: np.ndarray, d: int, *, drop_diagonal: bool) -> float:
    """``Σ_ij (a_i·b_j / d + 1)³``, without the diagonal terms if asked (when a is b)."""
    k = (a / d) @ b.T
    k += 1.0
    total = float(np.vdot(k * k, k))  # Σ k³ in one BLAS pass, no k³ temporary
    if drop_diagonal:
        total -= float((np.diagonal(k) ** 3).sum())
    return total


def kid(
    real: Any, fake: Any, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD² with a cubic polynomial kernel, over subsets.

    Bińkowski et al. 2018, "Demystifying MMD GANs". With the kernel
    ``k(x, y) = (x·y / d + 1)³`` (d = number of features) and m samples x from ``real`` and
    y from ``fake``, the unbiased estimator is::

        MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m-1)) + Σ_{i≠j} k(y_i, y_j) / (m(m-1))
                 - 2 Σ_{i,j} k(x_i, y_j) / m²

    (diagonal terms of K_xx and K_yy excluded). It is computed on ``subsets`` random subsets
    of ``m = min(subset_size, len(real), len(fake))`` rows each; in each subset, first m real
    rows then m fake rows are drawn without replacement by
    ``numpy.random.default_rng(seed).choice(n, m, replace=False)`` (one generator for the
    whole call, so the result depends only on the arguments). Returns ``(mean, std)`` over the
    subsets (population std, ddof=0, as torch-fidelity and the reference code report it).
    MMD²_u is unbiased, so it can be negative when the distributions are equal.
    """
    func = "kid"
    real, fake = _feature_pair(func, real, fake)
    subsets = _positive_int(func, "subsets", subsets)
    subset_size = _positive_int(func, "subset_size", subset_size, minimum=2)
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    values = np.empty(subsets)
    for s in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        same = (
            _cubic_kernel_sum(x, x, d, drop_diagonal=True) + _cubic_kernel_sum(y, y, d, drop_diagonal=True)
        ) / (m * (m - 1))
        cross = _cubic_kernel_sum(x, y, d, drop_diagonal=False) / (m * m)
        values[s] = same - 2.0 * cross
    return float(values.mean()), float(values.std())


# --------------------------------------------------------------------------------------------
# precision, recall, density, coverage


def _augmented(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[-2x, 1, |x|²]`` and ``[x, |x|², 1]``: their product is the squared-distance matrix."""
    sq = np.einsum("ij,ij->i", x, x)[:, None]
    ones = np.ones_like(sq)
    return np.hstack([-2.0 * x, ones, sq]), np.hstack([x, sq, ones])


def _block_rows(n_cols: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, n_cols))


def _knn_radii_squared(left: np.ndarray, right: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each sample to its k-th nearest other sample (itself excluded).

    ``left`` and ``right`` are the two :func:`_augmented` forms of the same samples.
    """
    n = len(left)
    radii = np.empty(n)
    step = _block_rows(n)
    for start in range(0, n, step):
        stop = min(n, start + step)
        dist = left[start:stop] @ right.T
        rows = np.arange(stop - start)
        dist[rows, start + rows] = np.inf  # not its own neighbour
        dist.partition(k - 1, axis=1)
        radii[start:stop] = dist[:, k - 1]
    return radii


def prdc(real: Any, fake: Any, *, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of generated features against real ones.

    Naeem, Oh, Uh, Choi & Yoo 2020, "Reliable Fidelity and Diversity Metrics for Generative
    Models" (ICML), with their reference code's conventions. With Euclidean distances,
    ``r(x_i)`` the distance from real ``x_i`` to its k-th nearest other real sample and
    ``s(y_j)`` the same among the fake samples, N real and M fake samples, and
    ``B(c, r)`` the open ball (strict ``<``)::

        precision = (1/M) Σ_j 1[∃ i: y_j ∈ B(x_i, r(x_i))]
        recall    = (1/N) Σ_i 1[∃ j: x_i ∈ B(y_j, s(y_j))]
        density   = (1/(k M)) Σ_j Σ_i 1[y_j ∈ B(x_i, r(x_i))]
        coverage  = (1/N) Σ_i 1[min_j |x_i - y_j| < r(x_i)]

    Precision and density measure fidelity (density is not capped at 1), recall and coverage
    diversity. Squared distances are computed in float64, after centring both sets on the
    real mean, as one matrix product
    ``[-2a, 1, |a|²] · [b, |b|², 1]ᵀ = |a|² + |b|² - 2 a·b``, in blocks of about 4M entries
    (32 MiB), so 10k x 10k never holds a full distance matrix; all comparisons are between
    squared distances. Requires ``1 <= k < len(real)`` and ``k < len(fake)``.
    """
    func = "prdc"
    k = _positive_int(func, "k", k)
    real, fake = _feature_pair(func, real, fake, min_rows=k + 1)
    # Distances do not change under a shift; centring keeps |a|² + |b|² - 2 a·b from cancelling
    # when the features sit far from the origin.
    centre = real.mean(axis=0)
    real, fake = real - centre, fake - centre
    real_left, real_right = _augmented(real)
    fake_left, fake_right = _augmented(fake)
    real_radii = _knn_radii_squared(real_left, real_right, k)
    fake_radii = _knn_radii_squared(fake_left, fake_right, k)[None, :]

    n_real, n_fake = len(real), len(fake)
    inside_counts = np.zeros(n_fake, dtype=np.int64)  # per fake sample: real balls holding it
    recalled = np.zeros(n_real, dtype=bool)  # per real sample: inside some fake ball
    covered = np.zeros(n_real, dtype=bool)  # per real sample: its ball holds some fake one
    step = _block_rows(n_fake)
    for start in range(0, n_real, step):
        stop = min(n_real, start + step)
        dist = real_left[start:stop] @ fake_right.T
        inside = dist < real_radii[start:stop, None]
        inside_counts += inside.sum(axis=0)
        covered[start:stop] = inside.any(axis=1)  # min_j d < r  <=>  some d < r
        recalled[start:stop] = (dist < fake_radii).any(axis=1)
    return {
        "precision": int(np.count_nonzero(inside_counts)) / n_fake,
        "recall": int(np.count_nonzero(recalled)) / n_real,
        "density": int(inside_counts.sum()) / (k * n_fake),
        "coverage": int(np.count_nonzero(covered)) / n_real,
    }


# --------------------------------------------------------------------------------------------
# Inception Score


def inception_score(probabilities: Any, *, splits: int = 10) -> tuple[float, float]:
    """Inception Score: ``exp(E_x KL(p(y|x) || p(y)))``, mean and std over splits.

    Salimans et al. 2016, "Improved Techniques for Training GANs". ``probabilities`` is
    (n, K): a classifier's class probabilities p(y|x) for n generated images, each row summing
    to 1 (within 1e-3). The rows are cut into ``splits`` consecutive parts of (nearly) equal
    size, as in the reference code; for each part, ``p(y)`` is the mean row of the part and
    the score ``exp(mean_x Σ_y p(y|x) (log p(y|x) - log p(y)))`` (0 log 0 = 0). Returns
    ``(mean, std)`` of the part scores (population std, ddof=0, as the reference code). It is 1
    when every prediction is the same, and K when predictions are one-hot and the K classes
    are used equally often in every part.
    """
    from scipy.special import rel_entr

    func = "inception_score"
    probs = _probabilities(func, probabilities)
    splits = _positive_int(func, "splits", splits)
    n = len(probs)
    if splits > n:
        raise ValueError(f"{func}: splits ({splits}) cannot exceed the number of rows ({n})")
    scores = np.empty(splits)
    for s in range(splits):
        part = probs[s * n // splits : (s + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = rel_entr(part, marginal).sum(axis=1).mean()
        scores[s] = math.exp(kl)
    return float(scores.mean()), float(scores.std())


# --------------------------------------------------------------------------------------------
# classifier two-sample test


def c2st(
    real: Any, fake: Any, *, classifier: Literal["logistic", "mlp"] = "logistic", seed: int = 0
) -> dict[str, Any]:
    """Classifier two-sample test: how well can a classifier tell fake features from real ones?

    Lopez-Paz & Oquab 2017, "Revisiting Classifier Two-Sample Tests". Labels: real = 0,
    fake = 1 (the positive class is "generated"). The rows are split 50/50 into train and test
    sets, stratified by label (``train_test_split(..., random_state=seed)``); features are
    standardised with a ``StandardScaler`` fitted on the train half only; then

    * ``"logistic"``: ``LogisticRegression`` (L2, C=1, lbfgs, up to 10,000 iterations);
    * ``"mlp"``: ``MLPClassifier`` with one hidden layer of 64 ReLU units, Adam, early
      stopping on 10 % of the train half, up to 500 epochs;

    both seeded with ``seed``, so the result is deterministic. Scores on the held-out half
    (``sklearn.metrics``): accuracy, precision, recall and F1 of the "fake" class, and ROC-AUC
    from ``predict_proba``. An AUC of 0.5 (accuracy 0.5 for balanced sets) means the
    classifier cannot tell them apart; 1.0 means perfectly separable.

    Returns ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (floats),
    ``n_train``, ``n_test`` (ints), ``classifier`` and ``converged`` (False when the optimiser
    stopped at its iteration limit; its ConvergenceWarning is not emitted).
    """
    func = "c2st"
    if classifier not in ("logistic", "mlp"):
        raise ValueError(f"{func}: classifier must be 'logistic' or 'mlp'; got {classifier!r}")
    # Both halves need both classes; the MLP's early stopping holds out 10 % of its half too.
    real, fake = _feature_pair(func, real, fake, min_rows=2 if classifier == "logistic" else 20)

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([real, fake])
    y = np.concatenate([np.zeros(len(real), dtype=np.int64), np.ones(len(fake), dtype=np.int64)])
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(x_train)
    x_train = scaler.transform(x_train)
    x_test = scaler.transform(x_test)

    if classifier == "logistic":
        max_iter = 10_000
        model = LogisticRegression(max_iter=max_iter, random_state=seed)
    else:
        max_iter = 500
        model = MLPClassifier(
            hidden_layer_sizes=(64,), early_stopping=True, max_iter=max_iter, random_state=seed
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    converged = int(np.max(model.n_iter_)) < max_iter

    predicted = model.predict(x_test)
    scores = model.predict_proba(x_test)[:, 1]
    return {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "precision": float(precision_score(y_test, predicted, zero_division=0)),
        "recall": float(recall_score(y_test, predicted, zero_division=0)),
        "f1": float(f1_score(y_test, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_test, scores)),
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "classifier": classifier,
        "converged": converged,
    }


# --------------------------------------------------------------------------------------------
# class accuracy of a conditional generator


def class_accuracy(probabilities: Any, requested: Any) -> dict[str, Any]:
    """How often a classifier assigns generated images to the label they were generated for.

    ``probabilities`` is (n, K), a classifier's scores for n images made by a conditional
    generator (only the argmax is used, so logits work too); ``requested`` (n,) holds the
    integer labels in ``[0, K)`` the generator was asked for. Returns ``accuracy``, the
    fraction with ``argmax == requested``, and ``per_class``, a list of K floats: that
    fraction among the images requested as each class (NaN for a class never requested).
    """
    func = "class_accuracy"
    scores = _as_float_array(func, "probabilities", probabilities, 2)
    labels = np.asarray(requested)
    if labels.ndim != 1:
        raise ValueError(f"{func}: requested must be a 1-D vector of labels; got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{func}: requested must hold integer class labels; got dtype {labels.dtype}")
    n, classes = scores.shape
    if len(labels) != n:
        raise ValueError(f"{func}: requested has {len(labels)} labels but probabilities has {n} rows")
    if labels.min() < 0 or labels.max() >= classes:
        bad = int(labels[(labels < 0) | (labels >= classes)][0])
        raise ValueError(
            f"{func}: requested labels must be in [0, {classes}) for {classes} classes; got {bad}"
        )
    hits = scores.argmax(axis=1) == labels
    per_class = [float(hits[labels == c].mean()) if np.any(labels == c) else math.nan for c in range(classes)]
    return {"accuracy": float(hits.mean()), "per_class": per_class}
