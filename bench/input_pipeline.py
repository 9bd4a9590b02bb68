"""Benchmark of the training input stream: samples/s and peak RSS, one JSON line per setting.

    python -m bench.input_pipeline                 # both settings, each in its own subprocess
    python -m bench.input_pipeline --setting=texture --batches=200

Settings: "object" streams ../shared/data/mvtec-ad/bottle (128 px, rotation +-45 degrees);
"texture" streams ../shared/data/magnetic-tile/magnetic_tile as a texture (image 512, patch 64, rotated crops).
Both use a training run's default rotation (config.py's rotation_interpolation / rotation_fill: bilinear
interpolation, NEAREST fill, as the authors), reported in the JSON line.
Batch 32; `--warmup` batches are drawn first (pipeline start-up, autotuning), then `--batches` are timed.
samples_per_s counts model input samples (images for objects, 64x64 patches for textures); the decode of the
training set (done once per run) is reported separately as load_s. peak_rss_mb is ru_maxrss of the subprocess
(it includes TensorFlow itself, about 0.64 GB after import on TF 2.21). The shared data folder is
<repo>/../shared/data unless CBIGAN_SHARED_DATA is set.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SETTINGS = {
    "object": {"dataset": "mvtec-ad", "category": "bottle", "type": None, "image_size": None, "patch_size": None},
    "texture": {"dataset": "magnetic-tile", "category": "magnetic_tile", "type": "texture", "image_size": 512,
                "patch_size": 64},
}


def shared_data_dir() -> Path:
    env = os.environ.get("CBIGAN_SHARED_DATA")
    return Path(env) if env else (REPO / ".." / "shared" / "data").resolve()


def stored_bytes(images) -> int:
    """Bytes of the training array as stored (the 1-channel base of a gray set)."""
    compact = getattr(images, "compact", None)
    return int((compact if compact is not None else images).nbytes)


def run_setting(setting: str, batches: int, warmup: int, batch_size: int, seed: int) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from config import TrainConfig
    from data.categories import category_spec
    from data.files import find_category
    from data.streams import load_train_images, train_dataset

    cfg = SETTINGS[setting]
    spec = category_spec(cfg["category"], type=cfg["type"], image_size=cfg["image_size"],
                         patch_size=cfg["patch_size"])
    files = find_category(str(shared_data_dir() / cfg["dataset"]), cfg["category"])
    t0 = time.perf_counter()
    images = load_train_images(spec, files, verbose=False)
    load_s = time.perf_counter() - t0
    defaults = TrainConfig()
    it = iter(train_dataset(spec, images, batch_size, seed, interpolation=defaults.rotation_interpolation,
                            fill_mode=defaults.rotation_fill))
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
    elapsed = time.perf_counter() - t0
    assert tuple(batch.shape) == (batch_size, spec.patch_size, spec.patch_size, 3)
    return {"bench": "input_pipeline", "setting": setting,
            "samples_per_s": round(batches * batch_size / elapsed, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "batch_size": batch_size, "batches": batches, "warmup_batches": warmup,
            "train_images": len(files.train_paths), "image_size": spec.image_size, "patch_size": spec.patch_size,
            "rotation_interpolation": defaults.rotation_interpolation, "rotation_fill": defaults.rotation_fill,
            "stored_mb": round(stored_bytes(images) / 2 ** 20, 1), "load_s": round(load_s, 2),
            "cpu_count": os.cpu_count()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), help="run one setting in this process")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.setting:
        print(json.dumps(run_setting(args.setting, args.batches, args.warmup, args.batch_size, args.seed)),
              flush=True)
        return 0
    status = 0
    for setting in ("object", "texture"):
        cmd = [sys.executable, "-m", "bench.input_pipeline", f"--setting={setting}", f"--batches={args.batches}",
               f"--warmup={args.warmup}", f"--batch_size={args.batch_size}", f"--seed={args.seed}"]
        proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            print(json.dumps({"bench": "input_pipeline", "setting": setting, "error": tail}), flush=True)
            status = 1
            continue
        print(lines[-1], flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
