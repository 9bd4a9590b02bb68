"""Which devices a script runs on, said in one line (train.py, evaluate.py, predict.py).

TensorFlow's own log is silenced (cli.py), including the messages of a CUDA build that finds no GPU. So each
script prints `device: ...` itself, warns in one line when a GPU-only flag meets a machine without a GPU, and,
when a CUDA build of TensorFlow sees no GPU, gives TensorFlow's reason in one line: it is read from the log of
a short child process that lists the GPUs with TensorFlow's logging on (only in that case: a second or two).

Nothing here initialises TensorFlow's runtime (no op runs): the thread pools and a multi-worker strategy can
still be set up afterwards.
"""
import os
import re
import subprocess
import sys

# Log lines that say why a CUDA build has no GPU, most telling first (TensorFlow/XLA wording).
REASON_PATTERNS = (
    r"failed call to cuInit.*",
    r"CUDA driver version is insufficient.*",
    r"Could not load dynamic library.*",
    r"Could not find cuda drivers.*",
    r"Cannot dlopen some GPU libraries.*",
    r"no CUDA-capable device.*",
    r".*(?:CUDA|cuda|cuDNN|cudnn|GPU).*(?:error|Error|ERROR|failed|not found|insufficient).*",
)
PROBE = "import tensorflow as tf; tf.config.list_physical_devices('GPU')"
LOG_PREFIX = re.compile(r"^.*?\.(?:cc|h|cpp|py):\d+\]\s*")  # "2026-... W external/.../cuda_driver.cc:282] "
MAX_REASON = 240


def cpu_threads():
    """Cores this process may use (TensorFlow's default thread-pool size)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def gpu_names():
    """Names of the GPUs TensorFlow sees (e.g. "NVIDIA A100-SXM4-40GB"), one per GPU."""
    import tensorflow as tf
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except (ValueError, RuntimeError):
            details = {}
        names.append(details.get("device_name") or gpu.name.replace("/physical_device:", ""))
    return names


def is_gpu_build():
    """Whether this TensorFlow was built with CUDA (or ROCm); tensorflow-cpu was not."""
    import tensorflow as tf
    info = tf.sysconfig.get_build_info()
    return bool(info.get("is_cuda_build") or info.get("is_rocm_build"))


def describe(gpus, strategy="default", precision="float32", threads=None):
    """The device line: gpus the GPU names, strategy a --strategy value (evaluate/predict: "default")."""
    if not gpus:
        where = f"CPU ({threads or cpu_threads()} threads)"
    elif strategy in ("mirrored", "multiworker"):
        where = f"GPU ({gpus[0]})" if len(gpus) == 1 else f"{len(gpus)} GPUs ({', '.join(gpus)})"
    else:  # no strategy: TensorFlow places everything on the first GPU
        where = f"GPU ({gpus[0]})" + (f", 1 of {len(gpus)} GPUs" if len(gpus) > 1 else "")
    if strategy == "mirrored":
        where += " with MirroredStrategy"
    elif strategy == "multiworker":
        where += " per worker with MultiWorkerMirroredStrategy"
    if precision and precision != "float32":
        where += f", {precision}"
    return f"device: {where}"


def flag_warnings(gpus, strategy="default", precision="float32"):
    """One line per GPU-only flag given on a machine without a GPU."""
    if gpus:
        return []
    warnings = []
    if strategy == "mirrored":
        warnings.append("warning: --strategy=mirrored: no GPU found, so it runs on the CPU with no speed-up "
                        "(it spreads batches over the GPUs of this host)")
    if precision == "mixed_float16":
        warnings.append("warning: --precision=mixed_float16: no GPU found; float16 on the CPU is usually slower "
                        "than float32 (it is meant for NVIDIA GPUs; CPUs with bfloat16 units: mixed_bfloat16)")
    return warnings


def reason_from_log(text):
    """The line of a TensorFlow log that says why no GPU is usable, without its log prefix; None if none does."""
    lines = [LOG_PREFIX.sub("", line).strip() for line in text.splitlines()]
    for pattern in REASON_PATTERNS:
        for line in lines:
            match = re.search(pattern, line)
            if match:
                reason = match.group(0).strip()
                return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 3] + "..."
    return None


def probe_log(command=None, timeout=180):
    """stderr of a child process that lists the GPUs with TensorFlow's logging on."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")
    command = command or [sys.executable, "-c", PROBE]
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout).stderr
    except (OSError, subprocess.SubprocessError) as err:
        return f"probe failed: {err}"


def no_gpu_reason(probe=probe_log):
    """Why a GPU build sees no GPU, in a few words."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible.strip()!r} hides every GPU"
    return reason_from_log(probe()) or ("TensorFlow logged no reason; run with TF_CPP_MIN_LOG_LEVEL=0 to see "
                                        "its whole log")


def device_report(strategy="default", precision="float32", gpus=None, gpu_build=None, probe=probe_log):
    """(device line, warning lines) for this process."""
    gpus = gpu_names() if gpus is None else gpus
    gpu_build = is_gpu_build() if gpu_build is None else gpu_build
    warnings = []
    if gpu_build and not gpus:
        warnings.append(f"warning: this TensorFlow is a GPU build but found no usable GPU ({no_gpu_reason(probe)}); "
                        "running on the CPU")
    warnings += flag_warnings(gpus, strategy, precision)
    return describe(gpus, strategy, precision), warnings


def print_devices(strategy="default", precision="float32", **kwargs):
    """Print the device line (stdout) and its warnings (stderr, one line each)."""
    line, warnings = device_report(strategy, precision, **kwargs)
    print(line, flush=True)
    for warning in warnings:
        print(warning, file=sys.stderr, flush=True)
