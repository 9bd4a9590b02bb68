"""Issue 16, items 6-8: a user's mistake is one line (no traceback), the data is checked before the first step
and a new run that fails its checks leaves nothing behind, and the smaller resume / data-folder / predict rules.

One tiny run (c=1, 32 px, 12 steps) is trained per module on a category whose file names are partly not UTF-8
(train/good, test/good, test/crack and a mask), so training, evaluation and prediction are all exercised on
them; the other tests copy it or its data."""
import csv
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from config import TrainConfig
from errors import ConfigError, DatasetError, StorageError
from tests.helpers import REPO
from tests.helpers.config import tiny_config
from tests.helpers.images import make_category, pattern, save_image, save_mask
import run_folder

TRAIN = dict(steps=12, d_iter=2, log_every=4, checkpoint_every=6, preview_every=0, image_size=32,
             threshold_holdout=0.49, seed=3)
PNG = (("png", "RGB"),)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8:strict")
REPLACEMENT = "\ufffd"
# (folder, name) -> new name as bytes (not UTF-8); train/good's last one sorts last: held out (k = 2)
BAD_NAMES = {("train/good", "001.png"): b"\xff\xfe001.png", ("train/good", "004.png"): b"\xe9t\xe9.png",
             ("test/good", "000.png"): b"bad\xffname.png", ("test/crack", "000.png"): b"c\xff.png",
             ("ground_truth/crack", "000_mask.png"): b"c\xff_mask.png"}


def make_data(root, name="bottle", bad_names=True):
    make_category(str(root), name, train=8, test={"good": 3, "crack": 2}, sizes=((32, 32),), variants=PNG)
    if bad_names:
        category = os.fsencode(os.path.join(root, name))
        for (folder, old), new in BAD_NAMES.items():
            os.rename(os.path.join(category, os.fsencode(folder), os.fsencode(old)),
                      os.path.join(category, os.fsencode(folder), new))
    return Path(root)


def quiet(*args):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.loop import train
    base = tmp_path_factory.mktemp("inputs")
    data = make_data(base / "data")
    run = train(tiny_config(category="bottle", data_dir=str(data), run_dir=str(base / "run"), **TRAIN), log=quiet)
    return {"data": data, "run": Path(run), "base": base}


def copy_run(trained, tmp_path, name="run"):
    target = tmp_path / name
    shutil.copytree(trained["run"], target, ignore=shutil.ignore_patterns("eval*", "tensorboard", "previews",
                                                                          "predictions"))
    return target


def config_for(trained, run, **overrides):
    return tiny_config(category="bottle", data_dir=str(trained["data"]), run_dir=str(run), **dict(TRAIN, **overrides))


def script(name, *args, timeout=300):
    return subprocess.run([sys.executable, str(REPO / name)] + [str(a) for a in args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(result, *fragments):
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:  # strict: a CSV of the user is valid UTF-8
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------------------------------------- 6. run folders


def test_run_dir_that_is_a_file_is_one_line(trained, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    result = script("train.py", "--category=bottle", f"--data_dir={trained['data']}", f"--run_dir={afile}",
                    "--steps=2")
    one_error_line(result, f"--run_dir={afile}", "is a file")
    assert afile.read_text() == "mine"
    with pytest.raises(ConfigError, match="--run_dir=.*afile/run: .*afile is a file"):  # a folder under a file
        run_folder.acquire_lock(afile / "run")


def test_run_dir_in_a_read_only_folder_is_one_line(trained, tmp_path, monkeypatch):
    from training.loop import TrainingJob
    parent = tmp_path / "readonly"
    parent.mkdir()
    config = config_for(trained, parent / "run")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == parent else real_access(p, mode))
    with pytest.raises(ConfigError, match=re.escape(f"--run_dir={parent / 'run'}: cannot write in {parent}")):
        TrainingJob(config, log=quiet)
    monkeypatch.undo()

    def refused(*args, **kwargs):  # what os.makedirs does in a read-only folder (when os.access cannot tell)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "makedirs", refused)
    with pytest.raises(ConfigError, match="--run_dir=.*cannot create the folder \\(Permission denied\\)"):
        TrainingJob(config, log=quiet)
    monkeypatch.undo()
    assert os.listdir(parent) == []


def test_run_dir_in_a_chmod_read_only_folder(trained, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders (the monkeypatched test covers this case)")
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = script("train.py", "--category=bottle", f"--data_dir={trained['data']}",
                        f"--run_dir={parent / 'run'}", "--steps=2")
        one_error_line(result, "--run_dir=", "cannot write in")
    finally:
        parent.chmod(0o755)


def test_output_that_is_a_file_is_refused_before_any_work(trained, tmp_path):
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    from inference.export_model import export_run
    from inference.predict_images import predict
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for call in (lambda: evaluate_run(str(trained["run"]), EvalSettings(output=str(afile)), log=quiet),
                 lambda: predict(str(trained["run"]), [str(trained["data"])], output_dir=str(afile), log=quiet),
                 lambda: export_run(str(trained["run"]), str(afile), log=quiet)):
        with pytest.raises(ConfigError, match=re.escape(f"--output={afile} is a file, not a folder")):
            call()
    assert afile.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_edited_config_json_that_does_not_match_the_checkpoint(trained, tmp_path):
    from inference.restore import restore_run
    run = copy_run(trained, tmp_path)
    payload = json.loads((run / run_folder.CONFIG_FILE).read_text())
    payload["config"]["latent_size"] = 16
    (run / run_folder.CONFIG_FILE).write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match=re.escape(f"does not match the model described by {run}/config.json")) \
            as err:
        restore_run(str(run), log=quiet)
    assert "\n" not in str(err.value) and "config.json was edited" in str(err.value)
    result = script("evaluate.py", f"--run={run}")
    one_error_line(result, "config.json")
    assert not re.search(r"^[WE]\d{4} ", result.stderr, re.M), result.stderr  # TensorFlow's unrestored values


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"{not json", "is not valid JSON"),
    (b"\xff\xfe\x00\x01binary", "is not text"),
    (b"[1, 2]", 'has no "config" section'),
    (b'{"versions": {}}', 'has no "config" section'),
    (b'{"config": {"latent_size": 8}}', 'with a "category"'),
    (b'{"config": {"category": "bottle", "latent_size": "8"}}', '"latent_size" is \'8\', not an int'),
    (b'{"config": {"category": "bottle", "latent_size": -8}}', "invalid setting (latent_size: must be positive"),
])
def test_damaged_config_json_is_one_line_naming_it(tmp_path, content, message):
    (tmp_path / run_folder.CONFIG_FILE).write_bytes(content)
    with pytest.raises(ConfigError) as err:
        TrainConfig.load(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / run_folder.CONFIG_FILE}") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_disk_full_during_a_checkpoint_save(trained, tmp_path, monkeypatch):
    from tensorflow.python.ops import io_ops
    from training.loop import train
    run = copy_run(trained, tmp_path)
    ckpt = run / run_folder.CHECKPOINT_DIR
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    real_save, seen = io_ops.save_v2, []

    def disk_full(*args, **kwargs):  # TensorFlow has written part of the new checkpoint into its _temp folder
        real_save(*args, **kwargs)
        seen.extend(os.listdir(ckpt))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_ops, "save_v2", disk_full)
    with pytest.raises(StorageError) as err:
        train(config_for(trained, run, steps=14), explicit_flags=["steps"], log=quiet)
    monkeypatch.undo()
    message = str(err.value)
    assert "\n" not in message and "ckpt-14" in message and str(ckpt) in message
    assert "No space left on device" in message and "intact (newest ckpt-12)" in message
    assert any("_temp" in name for name in seen)  # the case being tested: a half-written checkpoint
    assert not [name for name in os.listdir(ckpt) if "_temp" in name]
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == before  # previous checkpoints intact
    assert not (run / run_folder.LOCK_FILE).exists()
    assert run_folder.find_checkpoint(run, log=quiet).endswith("ckpt-12")  # the next run resumes from it


def test_unbalanced_quote_in_sweep_type_flags(tmp_path):
    import sweep
    with pytest.raises(ConfigError, match="--object_flags=--image_size='64: no closing quotation"):
        sweep.parse_type_flags("object_flags", "--image_size='64")
    assert sweep.parse_type_flags("texture_flags", "--image_size=64 '--patch_size=32'") == [
        "--image_size=64", "--patch_size=32"]
    (tmp_path / "data" / "bottle").mkdir(parents=True)
    result = script("sweep.py", f"--data_dir={tmp_path / 'data'}", f"--sweep_dir={tmp_path / 'sweep'}",
                    "--gpus=none", "--steps=1", "--texture_flags=--patch_size=\"32")
    one_error_line(result, "--texture_flags=", "no closing quotation")
    assert not (tmp_path / "sweep").exists()


def test_file_names_that_are_not_utf8_are_trained_evaluated_and_predicted(trained, tmp_path):
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    from inference.predict_images import predict
    run = trained["run"]
    # training: every image used, the held-out one with a non-UTF-8 name scored and listed byte for byte
    saved = json.loads((run / run_folder.CONFIG_FILE).read_text())["dataset"]
    assert saved["train_images"] + saved["threshold_holdout_images"] == 8
    with open(run / run_folder.HOLDOUT_SCORES_FILE, newline="", encoding="utf-8", errors="surrogateescape") as f:
        holdout = [row["path"] for row in csv.DictReader(f)]
    assert len(holdout) == 4 and os.path.isfile(holdout[-1]) and os.fsencode(holdout[-1]).endswith(b"\xff\xfe001.png")

    summary = evaluate_run(str(run), EvalSettings(lambdas=(0.1,), output=str(tmp_path / "eval")), log=quiet)
    rows = read_rows(Path(summary.eval_dir) / "scores.csv")
    assert len(rows) == 5 and all(np.isfinite(float(row["score_lambda_0.1"])) for row in rows)
    assert {os.path.basename(row["path"]) for row in rows} >= {f"bad{REPLACEMENT}name.png", f"c{REPLACEMENT}.png"}
    assert summary.has_masks  # the mask with a non-UTF-8 name was found for its image

    inputs = tmp_path / "inputs"
    shutil.copytree(trained["data"] / "bottle" / "test", inputs)
    (inputs / "good" / "x.png").write_bytes(b"not a png")
    os.rename(os.fsencode(inputs / "good" / "x.png"), os.fsencode(inputs / "good") + b"/broken\xff.png")
    lines = []
    terminal = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")  # a strict UTF-8 terminal
    # --weights=last rescores the held-out images for the threshold: read back from holdout_scores.csv
    result = predict(str(run), [str(inputs)], output_dir=str(tmp_path / "pred"), weights="last", log=lines.append,
                     stderr=terminal)
    assert result.n_scored == 5 and len(result.skipped) == 1 and result.threshold.rescored
    rows = read_rows(tmp_path / "pred" / "predictions.csv")
    assert len(rows) == 5 and f"bad{REPLACEMENT}name.png" in {os.path.basename(row["path"]) for row in rows}
    skipped = read_rows(tmp_path / "pred" / "skipped.csv")
    assert [os.path.basename(row["path"]) for row in skipped] == [f"broken{REPLACEMENT}.png"]
    terminal.flush()
    assert f"skipped: cannot decode image {inputs / 'good'}/broken{REPLACEMENT}.png" in \
        terminal.buffer.getvalue().decode("utf-8")
    "\n".join(lines).encode("utf-8")  # no surrogate escapes left in what is printed


# ---------------------------------------------------------------------------------------------- 7. checks first


@pytest.mark.parametrize("damage", ["undecodable", "truncated", "mask_size"])
def test_bad_test_image_or_mask_is_found_before_the_first_step(tmp_path, damage):
    from training.loop import train
    data = make_data(tmp_path / "data", bad_names=False)
    category = data / "bottle"
    if damage == "undecodable":
        bad = category / "test" / "crack" / "001.png"
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 500, np.uint8).tobytes())
    elif damage == "truncated":  # a valid header, the pixel data cut: found by PNG's chunk checksums
        bad = category / "test" / "good" / "002.png"
        bad.write_bytes(bad.read_bytes()[:120])
    else:
        bad = category / "ground_truth" / "crack" / "001_mask.png"
        save_mask(str(bad), np.ones((40, 32), bool))
    run = tmp_path / "run"
    with pytest.raises(DatasetError, match=re.escape(str(bad))) as err:
        train(tiny_config(category="bottle", data_dir=str(data), run_dir=str(run), **TRAIN), log=quiet)
    assert "\n" not in str(err.value)
    assert not run.exists()  # nothing that would block the corrected command


def test_a_new_run_failing_before_its_first_step_leaves_no_config_json(tmp_path):
    """A training image whose header reads but whose data does not decode (a truncated JPEG) is found when the
    images are loaded, after config.json was written: the new run's files are removed again."""
    from training.loop import resolve_config, train
    data = make_data(tmp_path / "data", bad_names=False)
    bad = data / "bottle" / "train" / "good" / "0.jpg"  # sorts first: a training image, not a held-out one
    save_image(str(bad), pattern(32, 32, seed=9))
    bad.write_bytes(bad.read_bytes()[:-50])  # the header is whole: it passes the start-up check
    run = tmp_path / "run"
    run.mkdir()  # made by the user: kept, empty
    lines = []
    with pytest.raises(DatasetError, match=re.escape(str(bad))):
        train(tiny_config(category="bottle", data_dir=str(data), run_dir=str(run), **TRAIN), log=lines.append)
    assert os.listdir(run) == []  # config.json, train_log.csv, tensorboard/ and the lock removed again
    # the corrected command (another --image_size, say) starts a new run instead of conflicting with config.json
    assert resolve_config(tiny_config(category="bottle", data_dir=str(data), run_dir=str(run),
                                      **dict(TRAIN, image_size=64)), ["image_size"])[1] is False


def test_a_resumed_run_whose_data_went_bad_keeps_its_files(trained, tmp_path):
    from training.loop import train
    run = copy_run(trained, tmp_path)
    data = tmp_path / "data"
    shutil.copytree(trained["data"], data)
    bad = data / "bottle" / "test" / "crack" / "001.png"
    bad.write_bytes(b"garbage")
    files = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    config = tiny_config(category="bottle", data_dir=str(data), run_dir=str(run), **dict(TRAIN, steps=14))
    with pytest.raises(DatasetError, match=re.escape(str(bad))):
        train(config, explicit_flags=["steps", "data_dir"], log=quiet)
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == files


def test_start_up_check_costs_little_on_bottle():
    """The header check of every train/test image and mask of the real bottle category (if present)."""
    import time
    from data.files import find_category
    from data.images import check_category_files
    root = REPO.parent / "shared" / "data" / "mvtec-ad"
    if not (root / "bottle").is_dir():
        pytest.skip("../shared/data/mvtec-ad/bottle is not on this machine")
    files = find_category(str(root), "bottle")
    check_category_files(files)  # warm the page cache
    started = time.process_time()
    check_category_files(files)
    assert time.process_time() - started < 2.0


# ---------------------------------------------------------------------------------------------- 8. smaller


def test_resume_with_fewer_steps_than_done_keeps_config_steps(trained, tmp_path):
    from training.loop import train
    run = copy_run(trained, tmp_path)
    lines = []
    train(config_for(trained, run, steps=8, log_every=2), explicit_flags=["steps", "log_every"], log=lines.append)
    assert any("already reached step 12 of 8" in line for line in lines)
    saved = json.loads((run / run_folder.CONFIG_FILE).read_text())["config"]
    assert saved["steps"] == 12 and saved["log_every"] == 2  # other resumable settings are still recorded
    assert run_folder.checkpoint_steps(run / run_folder.CHECKPOINT_DIR) == [12, 6]


def test_broken_symlinks_in_a_data_folder_are_counted_as_ignored(tmp_path):
    from data.files import find_category
    data = make_data(tmp_path / "data", bad_names=False)
    good = data / "bottle" / "train" / "good"
    os.symlink(tmp_path / "nowhere.png", good / "gone.png")
    os.symlink("loop.png", good / "loop.png")  # a link to itself
    os.symlink(good / "000.png", good / "alias.png")  # a working link is an image like any other
    (data / "bottle" / "test" / "good" / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    files = find_category(str(data), "bottle")
    assert len(files.train_paths) == 9 and len([i for i in files.test_items if i.label == 0]) == 3
    assert f"ignored 2 broken symbolic link(s) in {good}" in files.warnings
    assert any("ignored 1 broken symbolic link(s)" in w and "test" in w for w in files.warnings)


def test_predict_never_reads_its_own_output_folder(trained, tmp_path):
    from inference.predict_images import HEATMAP_DIR, expand_inputs, predict
    images = tmp_path / "images"
    shutil.copytree(trained["data"] / "bottle" / "test" / "crack", images)
    out = images / "out"
    for name in ("c.png.heatmap.png", "001.png.heatmap.png"):  # an earlier predict.py --heatmaps --output=images/out
        save_image(str(out / HEATMAP_DIR / name), pattern(32, 32))
    result = predict(str(trained["run"]), [str(images)], output_dir=str(out), heatmaps=True, log=quiet)
    assert result.n_scored == 2 and not result.skipped
    assert len(read_rows(out / "predictions.csv")) == 2
    paths, problems = expand_inputs([str(images), str(out / HEATMAP_DIR)], str(out))
    assert len(paths) == 2 and problems == [(str(out / HEATMAP_DIR), "is in predict.py's output folder (its own "
                                                                      "results), not scored")]
    # an input inside the output folder was named on purpose: only the heatmaps are skipped there
    save_image(str(out / "extra.png"), pattern(32, 32))
    assert expand_inputs([str(out)], str(out)) == ([str(out / "extra.png")], [])


def test_predictions_csv_and_export_info_are_written_whole(trained, tmp_path, monkeypatch):
    from inference import export_model
    from inference.export_model import INFO_FILE, export_run
    from inference.predict_images import PREDICTIONS_FILE, predict
    out, exported = tmp_path / "pred", tmp_path / "exported"
    out.mkdir()
    exported.mkdir()
    (out / PREDICTIONS_FILE).write_text("path,score\nprevious,1\n")  # earlier results
    (exported / INFO_FILE).write_text('{"previous": true}\n')

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    monkeypatch.setattr(export_model.tf.saved_model, "save", lambda *args, **kwargs: None)  # not what is tested
    with pytest.raises(OSError):
        predict(str(trained["run"]), [str(trained["data"] / "bottle" / "test" / "crack")], output_dir=str(out),
                log=quiet)
    with pytest.raises(OSError):
        export_run(str(trained["run"]), str(exported), overwrite=True, log=quiet)
    monkeypatch.undo()
    assert (out / PREDICTIONS_FILE).read_text() == "path,score\nprevious,1\n"
    assert (exported / INFO_FILE).read_text() == '{"previous": true}\n'
    assert not [p for p in list(out.iterdir()) + list(exported.iterdir()) if ".tmp-" in p.name]
