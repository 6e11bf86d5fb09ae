"""Start-up time of the light commands against importing their own libraries.

Target (issue #2): `ganctl --help` within 2x `python -c "import typer, rich, pluggy, yaml"`;
and (issue 15) still within 2x with a plugin that adds a command installed (tests/plugin_dists/
ganctl-greet, installed offline into a scratch folder on PYTHONPATH, with its own cache folder
warmed by one `ganctl plugins`). All are timed in one interleaved run so machine noise hits them
alike; the table gives medians and the ratio to the baseline. Usage: python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import harness  # bench/harness.py (scripts run as python bench/NAME.py)

CASES = {
    "baseline: import typer, rich, pluggy, yaml": [sys.executable, "-c", "import typer, rich, pluggy, yaml"],
    "ganctl --help": [shutil.which("ganctl") or "ganctl", "--help"],
    "ganctl --version": [shutil.which("ganctl") or "ganctl", "--version"],
    "ganctl plugins": [shutil.which("ganctl") or "ganctl", "plugins"],
    "ganctl recipe schema": [shutil.which("ganctl") or "ganctl", "recipe", "schema"],
}


def command_plugin(scratch: Path) -> dict[str, str]:
    """The environment of a ganctl with ganctl-greet (a command plugin) installed and its command
    cache warm."""
    site = scratch / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(harness.ROOT / "tests" / "plugin_dists" / "ganctl-greet")],
                   check=True, cwd=scratch)
    env = {"PYTHONPATH": str(site), "GANCTL_CACHE_DIR": str(scratch / "cache")}
    harness.run([sys.executable, "-m", "ganctl", "plugins"], env)  # fills the cache, as any use would
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        greet = command_plugin(Path(scratch))
        cases = {name: (cmd, None) for name, cmd in CASES.items()}
        cases["python -m ganctl --help"] = ([sys.executable, "-m", "ganctl", "--help"], None)
        cases["python -m ganctl --help, command plugin"] = ([sys.executable, "-m", "ganctl", "--help"], greet)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, (cmd, env) in cases.items():
                times[name].append(harness.run(cmd, env).seconds)
    base = statistics.median(times[next(iter(CASES))])
    print(f"{'case':45} {'median ms':>10} {'ratio':>7}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:45} {median * 1000:10.0f} {median / base:7.2f}")


if __name__ == "__main__":
    main()
