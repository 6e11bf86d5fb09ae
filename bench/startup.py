"""Start-up time of the light commands against importing their own libraries.

Target (issue #2): `ganctl --help` within 2x `python -c "import typer, rich, pluggy, yaml"`.
Both are timed in one interleaved run so machine noise hits both alike; the table gives medians
and the ratio to the baseline. Usage: python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys

import harness  # bench/harness.py (scripts run as python bench/NAME.py)

CASES = {
    "baseline: import typer, rich, pluggy, yaml": [sys.executable, "-c", "import typer, rich, pluggy, yaml"],
    "ganctl --help": [shutil.which("ganctl") or "ganctl", "--help"],
    "ganctl --version": [shutil.which("ganctl") or "ganctl", "--version"],
    "ganctl plugins": [shutil.which("ganctl") or "ganctl", "plugins"],
    "ganctl recipe schema": [shutil.which("ganctl") or "ganctl", "recipe", "schema"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, cmd in CASES.items():
            times[name].append(harness.run(cmd).seconds)
    base = statistics.median(times[next(iter(CASES))])
    print(f"{'case':45} {'median ms':>10} {'ratio':>7}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:45} {median * 1000:10.0f} {median / base:7.2f}")


if __name__ == "__main__":
    main()
