"""CPU thread layout for scoring with parallel streams (docs/PERFORMANCE.md, "Parallel streams").

The networks are thin (3 to 48 channels): one convolution keeps two threads only about 78% busy. Scoring a batch
as `streams` independent halves in one graph lets TensorFlow run them side by side on its inter-op threads,
each op on 1 intra-op thread (on 2 cores): 1.2-1.3x the images/s of one stream on two threads
(bench/scoring.py --streams=1 vs the default).
"""
import os

SCORING_STREAMS = 2


def stream_threads(streams, cpus=None):
    """(intra_op, inter_op) thread counts for `streams` concurrent streams on `cpus` cores: the cores are shared
    out among the streams (at least one each) and there are enough inter-op threads to run all streams."""
    cpus = cpus or os.cpu_count() or 1
    streams = max(1, int(streams))
    return max(1, cpus // streams), max(streams, cpus)


def configure_threads(streams=SCORING_STREAMS):
    """Set TensorFlow's thread pools for `streams` streams; call before TensorFlow runs its first op.

    Returns (intra_op, inter_op), or None when the pools were already created (then they stay as they are:
    results are the same, only slower)."""
    import tensorflow as tf

    intra, inter = stream_threads(streams)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # "cannot be modified after initialization"
        return None
    return intra, inter
