"""The Makefile passes the recipe on (`make demo` trains the fast recipe in its own run folder, `make train` passes
RECIPE) and installs the TensorFlow build ACCEL names, kept by later targets (dry runs, `make -n`: nothing is
executed)."""
import os
import shutil
import subprocess

import pytest

from tests.helpers import REPO

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


# make install ACCEL=cpu|cuda: which TensorFlow build, recorded in the venv's marker file and kept by later targets.
# VENV points at a temporary folder, so the dry runs see the marker state each test sets up.

def _tf_version():
    with open(os.path.join(REPO, "requirements.txt")) as f:
        pins = [line.strip().split("==")[1] for line in f if line.startswith("tensorflow-cpu==")]
    assert len(pins) == 1
    return pins[0]


def _marker(tmp_path, content=None, older_than_requirements=False):
    venv = tmp_path / "venv"
    if content is not None:
        venv.mkdir()
        marker = venv / ".installed"
        marker.write_text(content)
        requirements_mtime = os.path.getmtime(os.path.join(REPO, "requirements.txt"))
        when = requirements_mtime + (-100 if older_than_requirements else 100)
        os.utime(marker, (when, when))
    return f"VENV={venv}"


def _pip_installs(out):
    return [line for line in out.splitlines() if " -m pip install -r " in line]


def test_install_accel_cuda_installs_the_cuda_build_of_the_pinned_version(tmp_path):
    out = _dry_run("install", "ACCEL=cuda", _marker(tmp_path))
    [install] = _pip_installs(out)
    assert f'"tensorflow[and-cuda]=={_tf_version()}"' in install
    assert "tensorflow-cpu" not in install
    assert "requirements-without-tensorflow.txt" in install  # the other pins, the tensorflow-cpu line filtered out
    assert "grep -v '^tensorflow-cpu==' requirements.txt" in out
    assert "pip uninstall -y tensorflow-cpu" in out
    assert f"echo ACCEL=cuda > {tmp_path}/venv/.installed" in out


def test_install_defaults_to_the_cpu_build(tmp_path):
    out = _dry_run("install", _marker(tmp_path))
    [install] = _pip_installs(out)
    assert f'"tensorflow-cpu=={_tf_version()}"' in install and "and-cuda" not in install
    assert f"echo ACCEL=cpu > {tmp_path}/venv/.installed" in out


def test_a_newer_requirements_file_reinstalls_the_recorded_cuda_build(tmp_path):
    out = _dry_run("test", _marker(tmp_path, "ACCEL=cuda\n", older_than_requirements=True))
    [install] = _pip_installs(out)
    assert '"tensorflow[and-cuda]==' in install and "tensorflow-cpu==" not in install
    assert "pip uninstall -y tensorflow-cpu" in out
    assert " -m pytest -q tests" in out


def test_an_up_to_date_cuda_install_is_left_alone(tmp_path):
    out = _dry_run("train", "CATEGORY=carpet", _marker(tmp_path, "ACCEL=cuda\n"))
    assert "pip" not in out and "train.py" in out


def test_an_old_marker_without_a_build_counts_as_the_cpu_build(tmp_path):
    assert "pip" not in _dry_run("install", _marker(tmp_path, ""))


def test_another_accel_than_the_recorded_one_reinstalls_tensorflow(tmp_path):
    out = _dry_run("install", "ACCEL=cpu", _marker(tmp_path, "ACCEL=cuda\n"))  # marker newer than requirements
    [install] = _pip_installs(out)
    assert '"tensorflow-cpu==' in install
    assert "pip uninstall -y tensorflow\n" in out + "\n"  # the CUDA build goes first (both own tensorflow/)


def test_an_unknown_accel_is_one_line_naming_it(tmp_path):
    result = subprocess.run(["make", "-n", "install", "ACCEL=rocm", _marker(tmp_path)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "ACCEL=rocm: must be cpu or cuda" in result.stderr
