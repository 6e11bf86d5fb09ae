"""Speed of the metrics' numerical core (plugins/ganctl_metrics/stats.py).

Target: ``frechet_distance`` on 2048-d statistics (Inception-v3 pool features) in under 1 s on
the reference machine (2 CPU cores). Baseline: the classic formula, ``scipy.linalg.sqrtm`` of
``sigma1 @ sigma2`` (pytorch-fid), timed in the same run, interleaved round by round with
``frechet_distance`` so that machine noise hits both alike; the table gives the ratio of the
medians and the relative difference of the two distances (the reference's rounding is
~1e-8 relative on rank-deficient covariances, ~1e-13 on full-rank ones).

Also timed: ``feature_statistics`` on the features the statistics come from, and ``kid``
(100 subsets of 1000, its defaults) and ``prdc`` (k=5) on 10k x 64 features.

Data: random features with the shape of Inception ones: ``--samples`` x ``--dim`` rows with a
decaying spectrum (variance ~ 1/i) in a random rotation, the fake set slightly rescaled and
shifted, so both covariances are dense and ill-conditioned. ``--rank-deficient`` draws fewer
samples than dimensions (1000 x 2048, the common case of a small evaluation set: rank-999
covariances); then the exact distance is also computed from the features (an SVD of the
1000 x 1000 cross product) and both methods' relative differences to it are printed.

Usage:
    python bench/metrics.py                        # 5 rounds; the sqrtm reference in 2 (~3 min)
    python bench/metrics.py --rounds 9 --reference-rounds 3 --json out.json
    python bench/metrics.py --no-reference --blas-threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import harness  # bench/harness.py (scripts run as python bench/NAME.py)
import numpy as np
import scipy
import scipy.linalg

import ganctl_metrics


def reference_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's formula: sqrtm of the product; eps*I on both when it is not finite."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean.real))


def exact_frechet(real, fake):
    """FID from the features when n <= d: with S = Xc^T Xc / (n - 1), Tr((S1 S2)^1/2) is the
    nuclear norm of Xc1 Xc2^T / sqrt((n1 - 1)(n2 - 1)), an n1 x n2 SVD, exact to rounding."""
    a = (real - real.mean(axis=0)) / np.sqrt(len(real) - 1)
    b = (fake - fake.mean(axis=0)) / np.sqrt(len(fake) - 1)
    diff = real.mean(axis=0) - fake.mean(axis=0)
    nuclear = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2 * nuclear)


def inception_like(rng, samples, dim, rotation, scale=1.0, shift=0.0):
    spectrum = 1.0 / np.sqrt(np.arange(1, dim + 1))
    return (rng.standard_normal((samples, dim)) * (spectrum * scale)) @ rotation + shift


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension for FID (2048)")
    parser.add_argument("--samples", type=int, default=5000, help="samples per set for FID (5000)")
    parser.add_argument("--rank-deficient", action="store_true", help="1000 samples instead of --samples")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of frechet_distance (5)")
    parser.add_argument("--reference-rounds", type=int, default=2, help="rounds that also run sqrtm (2)")
    parser.add_argument("--no-reference", action="store_true", help="skip the sqrtm reference")
    parser.add_argument("--small-n", type=int, default=10_000, help="samples per set for kid/prdc (10000)")
    parser.add_argument("--small-dim", type=int, default=64, help="feature dimension for kid/prdc (64)")
    parser.add_argument("--small-rounds", type=int, default=3, help="rounds of kid and prdc (3)")
    parser.add_argument("--blas-threads", type=int, help="limit BLAS threads (threadpoolctl)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    limits = None
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(args.blas_threads)

    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    samples = 1000 if args.rank_deficient else args.samples
    rotation, _ = np.linalg.qr(rng.standard_normal((args.dim, args.dim)))
    real = inception_like(rng, samples, args.dim, rotation)
    fake = inception_like(rng, samples, args.dim, rotation, scale=1.05, shift=0.01)

    stats_time, (mu1, sigma1) = timed(lambda: ganctl_metrics.feature_statistics(real))
    mu2, sigma2 = ganctl_metrics.feature_statistics(fake)
    ours, reference, rel_errors = [], [], []
    details = ganctl_metrics.frechet_details(mu1, sigma1, mu2, sigma2)  # warm-up (imports scipy.linalg)
    run_reference = not args.no_reference and args.reference_rounds > 0
    for round_index in range(args.rounds):
        with_reference = run_reference and round_index < args.reference_rounds
        order = ["ours", "reference"] if round_index % 2 == 0 else ["reference", "ours"]
        for name in order:
            if name == "ours":
                seconds, value = timed(lambda: ganctl_metrics.frechet_distance(mu1, sigma1, mu2, sigma2))
                ours.append(seconds)
            elif with_reference:
                seconds, expected = timed(lambda: reference_frechet(mu1, sigma1, mu2, sigma2))
                reference.append(seconds)
        if with_reference:
            rel_errors.append(abs(value - expected) / abs(expected))
        print(
            f"round {round_index + 1}/{args.rounds}: frechet_distance {ours[-1]:.3f} s"
            + (f", sqrtm reference {reference[-1]:.1f} s" if with_reference else ""),
            flush=True,
        )

    exact = None
    if samples <= args.dim:  # few samples: the exact value, from the features themselves
        exact = exact_frechet(real, fake)
        exact_errors = {"frechet_distance": abs(value - exact) / abs(exact)}
        if reference:
            exact_errors["sqrtm_reference"] = abs(expected - exact) / abs(exact)

    small_real = rng.standard_normal((args.small_n, args.small_dim))
    small_fake = rng.standard_normal((args.small_n, args.small_dim)) * 1.05 + 0.02
    kid_times, prdc_times = [], []
    for _ in range(args.small_rounds):
        seconds, kid_value = timed(lambda: ganctl_metrics.kid(small_real, small_fake))
        kid_times.append(seconds)
        seconds, prdc_value = timed(lambda: ganctl_metrics.prdc(small_real, small_fake))
        prdc_times.append(seconds)
    load_after = os.getloadavg()

    fd_label = f"frechet_distance, {args.dim}-d ({samples} x {args.dim} features)"
    results = {
        "feature_statistics": {**harness.summary([stats_time], "_s"), "case": f"{samples} x {args.dim}"},
        "frechet_distance": {
            **harness.summary(ours, "_s"),
            "case": fd_label,
            "fid": value,
            "method": details["method"],
            "complex_residue": details["complex_residue"],
            "eps": details["eps"],
        },
    }
    if reference:
        results["sqrtm_reference"] = {
            **harness.summary(reference, "_s"),
            "case": "scipy.linalg.sqrtm(sigma1 @ sigma2)",
        }
        results["ratio_reference_over_ours"] = statistics.median(reference) / statistics.median(ours)
        results["max_relative_difference"] = max(rel_errors)
    if exact is not None:
        results["exact_fid"] = exact
        results["relative_difference_to_exact"] = exact_errors
    if kid_times:
        results["kid"] = {
            **harness.summary(kid_times, "_s"),
            "case": f"{args.small_n} x {args.small_dim}, 100 subsets of 1000",
            "value": kid_value,
        }
        results["prdc"] = {
            **harness.summary(prdc_times, "_s"),
            "case": f"{args.small_n} x {args.small_dim}, k=5",
            "value": prdc_value,
        }

    from threadpoolctl import threadpool_info

    machine = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "blas": sorted(
            {f"{p['internal_api']} {p['version']} x{p['num_threads']}" for p in threadpool_info()}
        ),
        "load_before": load_before,
        "load_after": load_after,
    }

    print()
    print(f"| {'case':58} | {'median s':>9} | {'min s':>7} | {'max s':>7} | runs |")
    print(f"| {'-' * 58} | {'-' * 8}: | {'-' * 6}: | {'-' * 6}: | ---: |")
    for key in ("feature_statistics", "frechet_distance", "sqrtm_reference", "kid", "prdc"):
        if key in results:
            r = results[key]
            label = f"{key}: {r['case']}" if key != "frechet_distance" else r["case"]
            print(
                f"| {label[:58]:58} | {r['median_s']:9.3f} | {r['min_s']:7.3f} | {r['max_s']:7.3f} | {r['runs']:4} |"
            )
    print()
    verdict = "met" if statistics.median(ours) < 1.0 else "NOT met"
    print(f"target frechet_distance < 1 s: {verdict} (median {statistics.median(ours):.3f} s)")
    print(
        f"fid {value:.6f}, method {details['method']}, complex residue {details['complex_residue']:.2e}, "
        f"eps {details['eps']}"
    )
    if reference:
        print(
            f"sqrtm reference / frechet_distance: {results['ratio_reference_over_ours']:.1f}x; "
            f"max relative difference {results['max_relative_difference']:.2e}"
        )
    if exact is not None:
        print(
            "relative difference to the exact value (SVD of the features' cross product): "
            + ", ".join(f"{name} {error:.2e}" for name, error in exact_errors.items())
        )
    if kid_times:
        print(f"kid {kid_value[0]:.6f} +- {kid_value[1]:.6f}; prdc {prdc_value}")
    print(
        f"machine: {machine['cpus']} CPUs, {machine['processor']}, numpy {machine['numpy']}, "
        f"scipy {machine['scipy']}, BLAS {', '.join(machine['blas'])}"
    )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    if limits is not None:
        limits.restore_original_limits()


if __name__ == "__main__":
    main()
