"""Fixtures for every test folder: quiet TensorFlow, the tiny TrainConfig factory and the tiny trained runs.

Plain helpers (REPO, tiny_config, the image makers, ...) are in tests/helpers/; the repository root is on sys.path
through pytest.ini's `pythonpath = .`.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from tests.helpers.config import tiny_config  # noqa: E402
from tests.helpers.runs import train_tiny_run  # noqa: E402


@pytest.fixture
def make_config():
    """The tiny_config factory as a fixture (tests call make_config(alpha=1.0, ...))."""
    return tiny_config


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """trained_run(kind) -> (run_dir, data_dir) of the tiny "object" or "texture" run of tests/helpers/runs.py,
    trained on first use and then shared by every test of the session (of each xdist worker). No test changes
    its files: a test that removes or edits one works on a copy."""
    runs = {}

    def get(kind="object"):
        if kind not in runs:
            runs[kind] = train_tiny_run(tmp_path_factory.mktemp(f"run_{kind}"), kind)
        return runs[kind]

    return get


@pytest.fixture(scope="session")
def object_run(trained_run):
    """(run_dir, data_dir) of the tiny object run."""
    return trained_run("object")
