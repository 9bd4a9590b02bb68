"""Benchmark of the CBiGAN training updates: ms per update, images/s and peak RSS, one JSON line per setting.

    python -m bench.train_step                          # both settings, each in its own subprocess
    python -m bench.train_step --setting=texture --cycles=10

Settings: "object" = CBiGAN(TrainConfig(), 128) and "texture" = CBiGAN(TrainConfig(), 64), i.e. the default
config (c=3, latent 64, d_iter 5, alpha 1e-4), random images in [-1, 1], batch 32. One full cycle (d_iter
critic updates + 1 G/E update) is run first as warm-up (tracing), then --cycles cycles are timed; each cycle
ends by reading a loss with float(), which waits for the updates to finish. ms_per_update = total time /
updates; images_per_s = batch * updates / total time; critic_ms / generator_encoder_ms are medians of the
single updates (each timed to completion). peak_rss_mb is ru_maxrss of the setting's own subprocess.
load_avg_1min is recorded because the figures are only comparable on an otherwise idle machine; cpu_ms_per_update
(process CPU time, all threads) is less sensitive to other load.
The authors' code measured 206-220 ms per update (objects) and 73-80 ms (textures) on the same machine kind
(reference-implementation.md); speedup = midpoint / ms_per_update.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

from bench._common import REPO, emit, peak_rss_mb

SIDES = {"object": 128, "texture": 64}
BASELINE_MS = {"object": 213.0, "texture": 76.5}  # midpoints of 206-220 and 73-80


def run_setting(setting, cycles, batch_size, seed=0):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    from config import TrainConfig
    from models.cbigan import CBiGAN

    side = SIDES[setting]
    config = TrainConfig(category="bench", batch_size=batch_size)
    model = CBiGAN(config, side)
    rng = np.random.default_rng(seed)
    # a few distinct batches, cycled (the input pipeline is benchmarked separately)
    batches = [tf.constant(rng.uniform(-1, 1, (batch_size, side, side, 3)).astype(np.float32)) for _ in range(4)]

    def cycle(start, timings=None):
        results = None
        for i in range(model.d_iter):
            t0 = time.perf_counter()
            results = model.critic_step(batches[(start + i) % len(batches)])
            if timings is not None:
                float(results["critic_total"])
                timings["critic"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        results = model.generator_encoder_step(batches[(start + model.d_iter) % len(batches)])
        float(results["generator_encoder_total"])  # forces completion of the whole cycle
        if timings is not None:
            timings["generator_encoder"].append(time.perf_counter() - t0)

    cycle(0)  # warm-up: traces both updates

    # whole cycles, timed end to end (no per-update synchronisation inside a cycle)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for c in range(cycles):
        cycle(c)
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    updates = cycles * (model.d_iter + 1)

    # per-kind medians: one more set of cycles with each update timed to completion
    timings = {"critic": [], "generator_encoder": []}
    for c in range(max(1, min(cycles, 3))):
        cycle(c, timings)

    ms = 1000 * total / updates
    return {"bench": "train_step", "setting": setting, "ms_per_update": round(ms, 1),
            "images_per_s": round(batch_size * updates / total, 1),
            "cpu_ms_per_update": round(1000 * cpu / updates, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "critic_ms_median": round(1000 * statistics.median(timings["critic"]), 1),
            "generator_encoder_ms_median": round(1000 * statistics.median(timings["generator_encoder"]), 1),
            "baseline_ms_per_update": BASELINE_MS[setting],
            "speedup": round(BASELINE_MS[setting] / ms, 2),
            "batch_size": batch_size, "cycles": cycles, "updates": updates, "d_iter": model.d_iter,
            "image_size": side, "tensorflow": tf.__version__, "cpus": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=("object", "texture", "both"), default="both")
    parser.add_argument("--cycles", type=int, default=5, help="timed 5+1 cycles after one warm-up cycle")
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()
    if args.cycles < 1 or args.batch_size < 1:
        parser.error("--cycles and --batch_size must be positive")
    if args.setting != "both":
        emit(run_setting(args.setting, args.cycles, args.batch_size))
        return 0
    status = 0
    for setting in SIDES:  # each in its own process, so each peak RSS is its own
        cmd = [sys.executable, "-m", "bench.train_step", f"--setting={setting}", f"--cycles={args.cycles}",
               f"--batch_size={args.batch_size}"]
        status |= subprocess.run(cmd, cwd=REPO).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
