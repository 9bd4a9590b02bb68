"""Folder inputs end to end: train.py --normal_dir/--abnormal_dir/--mask_dir (run from another working
directory, relative paths), then evaluation of that run; and the one-line errors of the folder settings."""
import csv
import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from data.files import list_images
from data.folders import split_normal
from errors import ConfigError
from tests.helpers import REPO
from tests.helpers.config import tiny_config
from tests.helpers.images import pattern, save_image

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
TINY_FLAGS = ["--channels=1", "--latent_size=8", "--batch_size=4", "--image_size=32", "--steps=4", "--d_iter=1",
              "--checkpoint_every=4", "--log_every=2", "--preview_every=0"]


def make_folders(root):
    """part/good (10 good images), part/bad/{scratch (2), dent (1)}, part/masks with both mask namings."""
    for i in range(10):
        save_image(str(root / "part" / "good" / f"g{i:02d}.png"), pattern(32, 32, seed=i))
    for defect, n in (("scratch", 2), ("dent", 1)):
        for i in range(n):
            image = pattern(32, 32, seed=100 + i)
            image[8:16, 8:16] = 255
            save_image(str(root / "part" / "bad" / defect / f"{defect}{i}.png"), image)
            mask = np.zeros((32, 32), np.uint8)
            mask[8:16, 8:16] = 255
            name = f"{defect}{i}_mask.png" if defect == "scratch" else f"{defect}{i}.png"
            os.makedirs(root / "part" / "masks" / defect, exist_ok=True)
            Image.fromarray(mask, "L").save(root / "part" / "masks" / defect / name)


def train_script(args, cwd):
    return subprocess.run([sys.executable, str(REPO / "train.py")] + args, cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    make_folders(root)
    # relative paths from a working directory that is not the repository; no --category (named after part/)
    result = train_script(["--normal_dir=part/good", "--abnormal_dir=part/bad", "--mask_dir=part/masks",
                           "--run_dir=runs/part"] + TINY_FLAGS, cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    return root, root / "runs" / "part"


def test_training_on_folders_records_absolute_folders_and_the_split(folder_run):
    root, run = folder_run
    payload = json.loads((run / "config.json").read_text())
    config = payload["config"]
    assert config["category"] == "part"  # the parent folder of --normal_dir
    assert config["normal_dir"] == str(root / "part" / "good")
    assert config["abnormal_dir"] == str(root / "part" / "bad")
    assert config["mask_dir"] == str(root / "part" / "masks")
    assert config["normal_test_dir"] == ""
    dataset = payload["dataset"]
    # 10 good images: 2 (round(0.2 * 10)) kept for testing, 8 for training, of which the threshold hold-out
    assert dataset["train_images"] + dataset["threshold_holdout_images"] == 8
    assert dataset["test_images"] == 2 + 3 and dataset["test_anomalous"] == 3
    assert dataset["has_masks"] is True


def test_evaluating_a_folder_run_from_another_directory(folder_run, monkeypatch):
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    root, run = folder_run
    monkeypatch.chdir(REPO)  # not where the run was trained: the saved absolute folders are found
    summary = evaluate_run(str(run), EvalSettings(), log=lambda *a: None)
    assert summary.category == "part" and summary.n_images == 5 and summary.n_anomalous == 3 and summary.has_masks
    with open(os.path.join(summary.eval_dir, "scores.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert Counter(r["defect_type"] for r in rows) == {"good": 2, "scratch": 2, "dent": 1}
    normal = list_images(str(root / "part" / "good"), [])
    held_out = split_normal(normal, 0.2, 0)[1]  # the seeded split, independent of --seed
    assert [r["path"] for r in rows if r["defect_type"] == "good"] == held_out
    assert all(int(r["label"]) == (r["defect_type"] != "good") for r in rows)
    metric = summary.metrics[0]
    assert 0.0 <= float(metric["pixel_auroc"]) <= 1.0  # masks were found for every anomalous image


def test_a_folder_run_refuses_data_dir(folder_run):
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    _, run = folder_run
    with pytest.raises(ConfigError, match="--data_dir does not apply .* trained on folders"):
        evaluate_run(str(run), EvalSettings(data_dir=str(REPO)), log=lambda *a: None)


@pytest.mark.parametrize("flag", ["abnormal_dir", "normal_test_dir", "mask_dir"])
def test_folder_settings_need_normal_dir(flag):
    with pytest.raises(ConfigError, match=f"--{flag}: needs --normal_dir"):
        tiny_config(**{flag: "somewhere"})


def test_normal_test_fraction_range():
    with pytest.raises(ConfigError, match="--normal_test_fraction: must be in \\[0, 1\\)"):
        tiny_config(normal_dir="good", normal_test_fraction=1.0)


def test_train_script_names_the_missing_inputs(tmp_path):
    result = train_script(["--steps=1"], cwd=tmp_path)
    assert result.returncode == 2
    assert "--category is required" in result.stderr and "--normal_dir" in result.stderr
    result = train_script(["--normal_dir=nowhere"] + TINY_FLAGS, cwd=tmp_path)
    assert result.returncode == 2
    assert f"--normal_dir={tmp_path / 'nowhere'} does not exist or is not a folder" in result.stderr  # one line
    assert len(result.stderr.strip().splitlines()) == 1
