"""Wall time of the README's first command, `ganctl train recipes/quickstart.yaml`.

Target (issue #3): at most 60 s on 2 CPU cores, start-up included. Each run is a fresh process,
timed from launch to exit. "cold" runs use an empty compilation cache (a first run on a new
machine); "warm" runs reuse the cache the previous run left.

    python bench/quickstart.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def once(cache: str, out: str) -> float:
    env = {**os.environ, "GANCTL_CACHE_DIR": cache}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ganctl", "train", "recipes/quickstart.yaml", "--out", out, "-q"],
                   check=True, capture_output=True, cwd=ROOT, env=env)
    return time.perf_counter() - start


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
        print(f"| {name} | {len(values)} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")


if __name__ == "__main__":
    main()
