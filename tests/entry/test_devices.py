"""devices.py: the device line of train.py / evaluate.py / predict.py, the one-line warnings for GPU-only flags
without a GPU, and the reason a GPU build of TensorFlow gives for seeing no GPU. Tested on the CPU build: GPUs,
build information and TensorFlow's log are test doubles (docs/SCALING.md says what was not run on a GPU)."""
import os
import subprocess
import sys

import pytest

import devices
from tests.helpers import REPO
from tests.helpers.images import make_category

# What TensorFlow's CUDA build logs when the driver finds no device (TF_CPP_MIN_LOG_LEVEL=0), abridged; both
# prefixes occur (TensorFlow 2.21 logs through absl: "E0000 00:00:<time> <thread> <file>:<line>] ").
NO_DEVICE_LOG = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796279169.823655   23464 port.cc:153] oneDNN custom operations are on.
2026-03-01 10:00:00.100000: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1796279170.554298   23464 cuda_platform.cc:51] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected
2026-03-01 10:00:01.000100: W tensorflow/core/common_runtime/gpu/gpu_device.cc:2365] Cannot dlopen some GPU libraries. Please make sure the missing libraries mentioned above are installed properly if you would like to use GPU.
Skipping registering GPU devices...
"""
MISSING_LIBRARY_LOG = """\
2026-03-01 10:00:00.5: W tensorflow/tsl/platform/default/dso_loader.cc:64] Could not load dynamic library 'libcudnn.so.9'; dlerror: libcudnn.so.9: cannot open shared object file: No such file or directory
2026-03-01 10:00:00.6: W tensorflow/core/common_runtime/gpu/gpu_device.cc:2365] Cannot dlopen some GPU libraries.
"""


def test_describe_names_the_devices():
    assert devices.describe([], threads=2) == "device: CPU (2 threads)"
    assert devices.describe(["NVIDIA A100"]) == "device: GPU (NVIDIA A100)"
    assert devices.describe(["NVIDIA A100", "NVIDIA T4"]) == "device: GPU (NVIDIA A100), 1 of 2 GPUs"
    assert (devices.describe(["NVIDIA A100", "NVIDIA T4"], strategy="mirrored")
            == "device: 2 GPUs (NVIDIA A100, NVIDIA T4) with MirroredStrategy")
    assert (devices.describe(["NVIDIA L4"], strategy="multiworker", precision="mixed_float16")
            == "device: GPU (NVIDIA L4) per worker with MultiWorkerMirroredStrategy, mixed_float16")
    assert devices.describe([], strategy="mirrored", threads=4) == "device: CPU (4 threads) with MirroredStrategy"


def test_cpu_threads_default_to_the_cores_this_process_may_use():
    assert devices.describe([]) == f"device: CPU ({len(os.sched_getaffinity(0))} threads)"


def test_gpu_only_flags_without_a_gpu_warn_in_one_line_each():
    warnings = devices.flag_warnings([], strategy="mirrored", precision="mixed_float16")
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: --strategy=mirrored: no GPU found")
    assert warnings[1].startswith("warning: --precision=mixed_float16: no GPU found")
    assert all("\n" not in w for w in warnings)
    assert devices.flag_warnings(["NVIDIA A100"], strategy="mirrored", precision="mixed_float16") == []
    assert devices.flag_warnings([], strategy="default", precision="mixed_bfloat16") == []  # fine on CPUs


def test_the_reason_is_one_line_of_the_log_without_its_prefix():
    assert devices.reason_from_log(NO_DEVICE_LOG) == ("failed call to cuInit: INTERNAL: CUDA error: Failed call "
                                                      "to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is "
                                                      "detected")
    assert devices.reason_from_log(MISSING_LIBRARY_LOG).startswith(
        "Could not load dynamic library 'libcudnn.so.9'; dlerror: libcudnn.so.9: cannot open shared object file")
    assert devices.reason_from_log("I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.") is None
    assert len(devices.reason_from_log("E x.cc:1] failed call to cuInit: " + "x" * 1000)) == devices.MAX_REASON


def test_the_probe_runs_with_tensorflow_logging_on(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    code = "import os, sys; sys.stderr.write('E a.cc:1] failed call to cuInit: level ' + os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    log = devices.probe_log([sys.executable, "-c", code])
    assert devices.reason_from_log(log) == "failed call to cuInit: level 0"


def test_a_gpu_build_without_gpu_gives_its_reason_in_one_line(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    line, warnings = devices.device_report(gpus=[], gpu_build=True, probe=lambda: NO_DEVICE_LOG)
    assert line.startswith("device: CPU (")
    [warning] = warnings
    assert warning.startswith("warning: this TensorFlow is a GPU build but found no usable GPU (failed call to "
                              "cuInit: INTERNAL")
    assert "CUDA_ERROR_NO_DEVICE" in warning and warning.endswith("running on the CPU")
    assert "\n" not in warning and "oneDNN" not in warning and "Skipping" not in warning


def test_a_gpu_build_with_hidden_gpus_says_so_without_probing(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")

    def probe():
        raise AssertionError("no probe needed")
    _, [warning] = devices.device_report(gpus=[], gpu_build=True, probe=probe)
    assert "CUDA_VISIBLE_DEVICES='-1' hides every GPU" in warning


def test_a_gpu_build_whose_log_says_nothing_points_to_the_log_level(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _, [warning] = devices.device_report(gpus=[], gpu_build=True, probe=lambda: "")
    assert "TF_CPP_MIN_LOG_LEVEL=0" in warning


def test_this_cpu_build_reports_the_cpu_and_no_warning():
    import tensorflow as tf
    assert not tf.sysconfig.get_build_info().get("is_cuda_build")
    assert devices.is_gpu_build() is False and devices.gpu_names() == []
    line, warnings = devices.device_report()
    assert line == f"device: CPU ({devices.cpu_threads()} threads)" and warnings == []


def test_gpus_are_named_from_tensorflow_device_details(monkeypatch):
    import tensorflow as tf
    gpus = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"),
            tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]
    names = {gpus[0].name: "NVIDIA A100-SXM4-40GB", gpus[1].name: "NVIDIA A100-SXM4-40GB"}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda d: {"device_name": names[d.name]})
    monkeypatch.setattr(tf.sysconfig, "get_build_info", lambda: {"is_cuda_build": True})
    line, warnings = devices.device_report(strategy="mirrored", precision="mixed_float16",
                                           probe=lambda: pytest.fail("GPUs were found: no probe"))
    assert line == ("device: 2 GPUs (NVIDIA A100-SXM4-40GB, NVIDIA A100-SXM4-40GB) with MirroredStrategy, "
                    "mixed_float16")
    assert warnings == []


def test_train_prints_the_device_line_and_the_flag_warnings(tmp_path):
    """train.py up to the training job (replaced by a marker): the line and both warnings, one line each."""
    make_category(str(tmp_path / "data"), "widget", train=4, test={"good": 1, "crack": 1})
    code = ("import sys; sys.argv = ['train.py', '--category=widget', '--data_dir=' + sys.argv[1], "
            "'--run_dir=' + sys.argv[2], '--strategy=mirrored', '--precision=mixed_float16']\n"
            "import training.loop\n"
            "training.loop.train = lambda *args, **kwargs: print('TRAINING STARTS')\n"
            "import cli, train\n"
            "cli.run_main(train.main, load_tensorflow=False)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data"), str(tmp_path / "run")], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"device: CPU ({devices.cpu_threads()} threads) with MirroredStrategy, "
                                        "mixed_float16", "TRAINING STARTS"]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(":")[1].strip() for w in warnings] == ["--strategy=mirrored", "--precision=mixed_float16"]
