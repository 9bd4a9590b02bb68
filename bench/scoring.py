"""Benchmark of anomaly scoring (eq. 7-9 + anomaly maps in one tf.function): images/s and peak RSS.

    python -m bench.scoring                      # both settings, each in its own subprocess
    python -m bench.scoring --setting=texture --repeats=5
    python -m bench.scoring --setting=object --streams=1       # one stream, TensorFlow's default threads

object: batches of 32 images of 128x128 (one model input each). texture: batches of 4 images of 512x512, each
cut into 64 patches of 64x64 (256 model inputs per batch), max over patches, maps stitched. c=3, random weights
(speed does not depend on the weights). One batch is run first (tracing), then --repeats batches are timed one
by one: images_per_s and ms_per_batch come from the median batch (as the authors' figures: median of 30 steps),
the *_mean fields from the mean.
Threads and streams are set as evaluate.py sets them (runtime_threads.configure_threads: each batch is scored as
two concurrent halves, one intra-op thread each on 2 cores).
The authors' eager scoring measured 95 ms per 32 objects (337 images/s) and 130 ms per texture image (7.7
images/s) on the same machine kind; speedup = our images/s / theirs.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

from bench._common import REPO, emit, peak_rss_mb

BASELINE_IMAGES_PER_S = {"object": 32 / 0.095, "texture": 1 / 0.130}
SETTINGS = {"object": dict(image_size=128, patch_size=128, images=32),
            "texture": dict(image_size=512, patch_size=64, images=4)}


def run_setting(setting, repeats, streams=None, images=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from runtime_threads import SCORING_STREAMS, configure_threads
    streams = streams or SCORING_STREAMS
    threads = configure_threads(streams)  # as evaluate.py and predict.py do (for the default streams)
    import numpy as np

    from config import TrainConfig
    from data.images import to_model_range_numpy
    from data.patches import to_patches_numpy
    from models.scoring import Scorer
    from models.cbigan import CBiGAN

    s = dict(SETTINGS[setting], **({"images": images} if images else {}))
    model = CBiGAN(TrainConfig(category="bench"), s["patch_size"])
    scorer = Scorer(model, streams=streams)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (s["images"], s["image_size"], s["image_size"], 3), dtype=np.uint8)
    patches = to_model_range_numpy(np.stack([to_patches_numpy(im, s["patch_size"]) for im in images]))
    batch_inputs = s["images"] * patches.shape[1]
    scorer.score_images(patches, s["image_size"], batch_size=batch_inputs)  # warm-up: tracing
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        scorer.score_images(patches, s["image_size"], batch_size=batch_inputs)
        seconds.append(time.perf_counter() - start)
    median, mean = statistics.median(seconds), statistics.fmean(seconds)
    images_per_s = s["images"] / median
    emit({"bench": "scoring", "setting": setting, "images_per_s": round(images_per_s, 1),
          "images_per_s_mean": round(s["images"] / mean, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
          "ms_per_batch": round(1000 * median, 1), "ms_per_batch_mean": round(1000 * mean, 1),
          "images_per_batch": s["images"], "model_inputs_per_batch": batch_inputs,
          "baseline_images_per_s": round(BASELINE_IMAGES_PER_S[setting], 1),
          "speedup": round(images_per_s / BASELINE_IMAGES_PER_S[setting], 2),
          "streams": streams, "intra_op_threads": threads and threads[0],
          "inter_op_threads": threads and threads[1], "load_avg_1min": round(os.getloadavg()[0], 2)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=["object", "texture", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--streams", type=int, default=0, help="parallel scoring streams (default: evaluate.py's, "
                        "2); 1 = one stream on TensorFlow's default threads")
    parser.add_argument("--images", type=int, default=0, help="images per batch (default 32 objects, 4 textures)")
    args = parser.parse_args()
    if args.repeats < 1 or args.streams < 0 or args.images < 0:
        parser.error("--repeats must be positive, --streams and --images not negative")
    if args.setting != "both":
        run_setting(args.setting, args.repeats, args.streams, args.images)
        return
    for setting in ("object", "texture"):
        subprocess.run([sys.executable, "-m", "bench.scoring", f"--setting={setting}", f"--repeats={args.repeats}",
                        f"--streams={args.streams}", f"--images={args.images}"], cwd=REPO, check=True)


if __name__ == "__main__":
    main()
