"""The Makefile passes the recipe on: `make demo` trains the fast recipe in its own run folder, `make train` passes
RECIPE (dry runs, `make -n`: nothing is executed)."""
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(*args):
    out = subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return out.replace("\\\n", " ")  # one line per command


def _command(out, script):
    lines = [line for line in out.splitlines() if f" {script} " in f" {line} " or line.endswith(script)]
    assert len(lines) == 1, out
    return lines[0].split()


def test_demo_trains_the_fast_recipe_in_its_own_folder():
    out = _dry_run("demo")
    train = _command(out, "train.py")
    assert "--recipe=fast" in train
    assert "--run_dir=runs/demo-elpv-mono-fast" in train
    assert "--run=runs/demo-elpv-mono-fast" in _command(out, "evaluate.py")


def test_demo_recipe_paper_uses_another_folder():
    train = _command(_dry_run("demo", "DEMO_RECIPE=paper"), "train.py")
    assert "--recipe=paper" in train and "--run_dir=runs/demo-elpv-mono-paper" in train


def test_train_passes_the_recipe():
    train = _command(_dry_run("train", "CATEGORY=carpet", "RECIPE=fast"), "train.py")
    assert "--category=carpet" in train and "--recipe=fast" in train
