"""Benchmark of the command line's start-up, and of the two pieces of machinery that keep it short.

`taskhub --help` and `taskhub catalog list` (on a migrated SQLite database) as shipped, against the same command
1. without `gc.freeze()` (hub/cli/__init__.py), and
2. with every command module imported up front, which is what listing the commands would cost without the
   summaries hub/cli keeps for the modules it imports only when their command runs.

Each variant runs --rounds times, interleaved with the others. Reported: the median CPU time (user + system) of
the process, which a machine busy with other work disturbs less than wall time, then the median wall time, and
each as a ratio to the shipped command.

Run it with ``.venv/bin/python bench/cli.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hub.cli import catalog, main  # noqa: E402 - after the path set-up above

LAZY_MODULES = sorted({lazy.module for group in (main, catalog) for lazy in group.lazy.values()})
VARIANTS = {
    "as shipped": "",
    "without gc.freeze": "import gc\ngc.freeze = lambda: None\n",
    "command modules imported up front": f"import importlib\nfor m in {LAZY_MODULES!r}: importlib.import_module(m)\n",
}
COMMANDS = {"taskhub --help": ["--help"], "taskhub catalog list": ["catalog", "list"]}


def measure(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one python process running code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15, help="runs of each variant (median)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskhub-bench-cli-") as data:
        env = {**os.environ, "TASKHUB_DATA_DIR": data, "PYTHONPATH": str(REPO)}
        env.pop("TASKHUB_DATABASE_URL", None)
        taskhub = str(Path(sys.executable).parent / "taskhub")
        subprocess.run([taskhub, "db", "upgrade"], env=env, check=True, capture_output=True)
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for number in range(args.rounds):
            print(f"round {number + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for command, argv in COMMANDS.items():
                for variant, prelude in VARIANTS.items():
                    code = f"import sys\nsys.argv = ['taskhub', *{argv!r}]\n{prelude}from hub.cli import main\nmain()\n"
                    samples.setdefault((command, variant), []).append(measure(code, env))
    print(f"{'command':22} {'variant':36} {'cpu ms':>7} {'ratio':>6} {'wall ms':>8} {'ratio':>6}")
    for command in COMMANDS:
        shipped = samples[(command, "as shipped")]
        base_cpu = statistics.median(s[0] for s in shipped)
        base_wall = statistics.median(s[1] for s in shipped)
        for variant in VARIANTS:
            cpu = statistics.median(s[0] for s in samples[(command, variant)])
            wall = statistics.median(s[1] for s in samples[(command, variant)])
            print(
                f"{command:22} {variant:36} {cpu * 1000:7.0f} {cpu / base_cpu:6.2f} "
                f"{wall * 1000:8.0f} {wall / base_wall:6.2f}"
            )


if __name__ == "__main__":
    run()
