"""tf.distribute strategies and Keras mixed-precision policies for training (--strategy, --precision).

Strategies: "default" is one device: make_strategy gives None, training/loop.py does not distribute the data
and CBiGAN runs its per-replica update under TensorFlow's default strategy (one replica); "mirrored" is
tf.distribute.MirroredStrategy (every GPU of this host, or every logical device when there is no GPU);
"multiworker" is tf.distribute.MultiWorkerMirroredStrategy over the hosts described by the TF_CONFIG
environment variable (docs/SCALING.md). Under a strategy CBiGAN keeps its variables mirrored, runs each update
per replica on a slice of the global batch and all-reduces the gradients (models/cbigan.py).

Precision: "float32" (default), "mixed_float16" (GPUs; dynamic loss scaling) or "mixed_bfloat16" (recent CPUs
and TPUs/GPUs with bf16 units; no loss scaling needed). Weights always stay float32.
"""
import contextlib
import json
import os

STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def make_strategy(name):
    """The tf.distribute strategy for --strategy; None for "default" (one device: plain batches, no scope)."""
    import tensorflow as tf
    if name == "default":
        return None
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        # Without GPUs MirroredStrategy would use a single CPU device; the logical CPU devices (see
        # split_cpu) let a CPU-only host check the multi-replica code path.
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def split_cpu(n):
    """Split the CPU into n logical devices (before TensorFlow initialises its devices; tests and trials)."""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def replicas(strategy):
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def scope(strategy):
    """strategy.scope(), or nothing for the default (None: one device)."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


@contextlib.contextmanager
def precision_policy(name):
    """Build layers under the Keras dtype policy `name` (None: leave the current one); the previous global
    policy is restored afterwards, so the policy sticks to the layers built here and leaks nowhere else."""
    import keras
    if name is None:
        yield
        return
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def task(strategy):
    """(task_type, task_id) of this process in a multi-worker cluster, (None, None) otherwise."""
    resolver = None if strategy is None else getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """Whether this process writes the run folder: always, except on the non-chief workers of a cluster
    (the chief is task "chief", or worker 0 when TF_CONFIG lists no chief)."""
    task_type, task_id = task(strategy)
    if task_type is None or task_type == "chief":
        return True
    if task_type == "worker" and task_id == 0:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        return "chief" not in cluster
    return False


def local_batch(strategy, x):
    """The part of a distributed batch that lives in this process, as one tensor (for previews)."""
    import tensorflow as tf
    if strategy is None or isinstance(x, tf.Tensor):
        return x
    return tf.concat(strategy.experimental_local_results(x), axis=0)
