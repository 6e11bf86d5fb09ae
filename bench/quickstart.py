"""Wall time of the README's first command, `ganctl train recipes/quickstart.yaml`.

Target (issue #3): at most 60 s on 2 CPU cores, start-up included. Each run is a fresh process,
timed from launch to exit. "cold" runs use an empty compilation cache (a first run on a new
machine); "warm" runs reuse the cache the previous run left.

    python bench/quickstart.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import harness  # bench/harness.py (scripts run as python bench/NAME.py)


def once(cache: str, out: str) -> float:
    """Seconds of one ``ganctl train recipes/quickstart.yaml``, with ``cache`` as its compilation cache."""
    return harness.run(harness.ganctl("train", "recipes/quickstart.yaml", "--out", out, "-q"),
                       {"GANCTL_CACHE_DIR": cache}).seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.runs):
            cache = os.path.join(scratch, f"cache-{i}")
            cold.append(once(cache, os.path.join(scratch, f"cold-{i}")))
            warm.append(once(cache, os.path.join(scratch, f"warm-{i}")))
    print("| cache | runs | median s | min s | max s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, values in (("cold", cold), ("warm", warm)):
        s = harness.summary(values)
        print(f"| {name} | {s['runs']} | {s['median']:.1f} | {s['min']:.1f} | {s['max']:.1f} |")


if __name__ == "__main__":
    main()
