"""bench/profile_ops.py: op times read from a real TensorFlow profile."""
import glob
import os

import tensorflow as tf

from bench import profile_ops


def test_op_times_finds_the_ops_that_ran(tmp_path):
    a = tf.random.normal([256, 256])

    @tf.function
    def work(a):
        return tf.reduce_sum(tf.nn.relu(tf.matmul(a, a)))

    work(a)
    tf.profiler.experimental.start(str(tmp_path))
    for _ in range(3):
        work(a).numpy()
    tf.profiler.experimental.stop()
    (path,) = glob.glob(os.path.join(tmp_path, "**", "*.xplane.pb"), recursive=True)
    by_op, by_type = profile_ops.op_times(path)
    types = set(by_type)
    assert any("MatMul" in t for t in types), types
    assert any("Relu" in t for t in types), types
    # executor and thread-pool regions are not ops
    assert not any("::" in name or " " in name for name in by_op)
    assert all(ms > 0 for ms in by_type.values())
    # per-op times add up to the per-type times
    assert abs(sum(by_op.values()) - sum(by_type.values())) < 1e-6 * max(1.0, sum(by_type.values()))
