"""Every benchmark runs the documented way, as a module from the repository folder (python -m bench.train_step):
its imports resolve without the repository on PYTHONPATH or sys.path edits, and --help answers."""
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

BENCH_MODULES = sorted(path.stem for path in (REPO / "bench").glob("*.py") if not path.stem.startswith("_"))


def test_the_benchmarks_are_found():
    assert {"train_step", "scoring", "input_pipeline", "profile_ops"} <= set(BENCH_MODULES)  # make bench, profile


@pytest.mark.parametrize("name", BENCH_MODULES)
def test_a_benchmark_runs_as_a_module(name):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--help"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: "), proc.stdout
