"""The commands of README.md, docs/*.md, the Makefile and the usage lines of bench/ and scripts/ run those tools as
modules (python -m bench.train_step, python -m scripts.prepare_elpv): their imports need the repository folder on
the path, which `-m` from that folder gives and `python bench/train_step.py` does not. Every module named exists."""
import re

import pytest

from tests.helpers import REPO

SCRIPT_PATH = re.compile(r"(?:python3?|\$\(PY\)|\$PY)\s+((?:bench|scripts)/\w+\.py)")
MODULE = re.compile(r"(?:python3?|\$\(PY\)|\$PY)\s+-m\s+((?:bench|scripts)\.\w+)")


def sources():
    files = [REPO / "README.md", REPO / "Makefile"] + sorted((REPO / "docs").glob("*.md"))
    return files + sorted((REPO / "bench").glob("*.*")) + sorted((REPO / "scripts").glob("*.py"))


def test_the_patterns_tell_the_two_forms_apart():
    line = "python bench/scoring.py; .venv/bin/python -m bench.train_step --cycles=2; $(PY) -m scripts.layers"
    assert SCRIPT_PATH.findall(line) == ["bench/scoring.py"]
    assert MODULE.findall(line) == ["bench.train_step", "scripts.layers"]


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_tools_are_run_as_existing_modules(path):
    text = path.read_text(encoding="utf-8")
    assert not SCRIPT_PATH.findall(text), f"{path.name}: run these as modules (python -m bench.x)"
    for module in MODULE.findall(text):
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"{path.name}: {module} does not exist"


def test_the_makefile_runs_the_benchmarks_and_the_demo_data_as_modules():
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    assert MODULE.findall(text) == ["scripts.prepare_elpv", "bench.train_step", "bench.input_pipeline",
                                    "bench.scoring", "bench.profile_ops"]
