"""The training job (train.py / training.loop): artifacts, resume, interruption, divergence, bad input."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from config import TrainConfig
from errors import ConfigError, TrainingDiverged
from tests.helpers import REPO
from tests.helpers.faults import poison_critic_loss
from tests.helpers.images import make_category

SHARED_BOTTLE = REPO.parent / "shared" / "data" / "mvtec-ad" / "bottle"
TINY_RUN = dict(channels=1, latent_size=8, batch_size=4, image_size=32, d_iter=2, log_every=4,
                checkpoint_every=6, preview_every=6, threshold_holdout=0.2, seed=3)


def tiny_job_config(tmp_path, **overrides):
    values = dict(category="widget", data_dir=str(tmp_path / "data"), run_dir=str(tmp_path / "run"), steps=12)
    values.update(TINY_RUN)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_category(str(root), "widget", train=10, test={"good": 2, "crack": 2})
    return root


def read_log(run_dir):
    with open(os.path.join(run_dir, "train_log.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


def run_script(args, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, str(REPO / "train.py")] + args, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, **kwargs)


def test_tiny_run_writes_every_artifact_and_resumes(tmp_path, dataset):
    from training.loop import TrainingJob, train
    from inference.restore import restore_run

    config = tiny_job_config(tmp_path, data_dir=str(dataset))
    job = TrainingJob(config)
    job.run()
    run_dir = config.run_dir

    saved = json.loads(Path(run_dir, "config.json").read_text())
    assert saved["config"]["category"] == "widget" and saved["config"]["steps"] == 12
    assert saved["config"]["alpha"] == 1e-4 and saved["config"]["lr"] == 1e-4  # paper defaults kept
    assert saved["versions"]["tensorflow"].startswith("2.")
    assert saved["dataset"]["train_images"] == 8 and saved["dataset"]["threshold_holdout_images"] == 2
    assert saved["dataset"]["test_images"] == 4 and saved["dataset"]["test_anomalous"] == 2

    rows = read_log(run_dir)
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    for row in rows:  # every loss column is a finite number (both update kinds happen in each interval)
        for name in ("critic_loss", "gradient_penalty", "adversarial_loss", "image_reconstruction",
                     "latent_reconstruction", "generator_encoder_total", "real_score", "fake_score"):
            assert np.isfinite(float(row[name])), name
        assert float(row["images_per_s"]) > 0
    # consistency_loss column = image + latent reconstruction of the same rows
    for row in rows:
        assert float(row["consistency_loss"]) == pytest.approx(
            float(row["image_reconstruction"]) + float(row["latent_reconstruction"]), rel=1e-4)

    checkpoints = sorted(p.name for p in Path(run_dir, "checkpoints").glob("ckpt-*.index"))
    assert checkpoints == ["ckpt-12.index", "ckpt-6.index"]
    restored = restore_run(run_dir)
    assert restored.step == 12
    for original, copy in ((job.model.critic, restored.model.critic),
                           (job.model.ema_generator, restored.model.ema_generator),
                           (job.model.encoder, restored.model.encoder)):
        for a, b in zip(original.get_weights(), copy.get_weights()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(job.model.rng.state.numpy(), restored.model.rng.state.numpy())

    pngs = sorted(p.name for p in Path(run_dir, "previews").glob("*.png"))
    assert pngs == sorted(f"{kind}_{step:07d}.png" for kind in ("train", "test", "samples") for step in (6, 12))
    with Image.open(Path(run_dir, "previews", "test_0000012.png")) as picture:
        # the labelled figure of 3 rows (input, reconstruction, error map) and 4 test images as columns
        # (tests/training/test_figures.py checks its labels): as large as that figure drawn with 32 px images
        from training.previews import reconstruction_grid
        zeros = np.zeros((4, 32, 32, 3), np.float32)
        assert picture.size[::-1] == reconstruction_grid(zeros, zeros, zeros[..., 0], title="x").shape[:2]
        assert picture.mode == "RGB"
    assert any(Path(run_dir, "tensorboard").iterdir())
    with open(Path(run_dir, "holdout_scores.csv"), newline="") as handle:
        holdout = list(csv.DictReader(handle))
    from data.files import find_category
    train_paths = find_category(str(dataset), "widget").train_paths
    assert [r["path"] for r in holdout] == [train_paths[4], train_paths[9]]  # every 5th image for 0.2
    assert all(float(r["score_lambda_0.1"]) == pytest.approx(
        0.9 * float(r["reconstruction_error"]) + 0.1 * float(r["feature_error"]), rel=1e-4) for r in holdout)

    # cpu_s: CPU seconds spent on training batches, growing, and at most what all cores could give in the wall
    # time (elapsed_s also counts monitoring and previews, cpu_s does not)
    cpu = [float(r["cpu_s"]) for r in rows]
    assert 0 < cpu[0] < cpu[1] < cpu[2] <= float(rows[-1]["elapsed_s"]) * os.cpu_count() + 0.5

    # Resume with more steps: the step count continues and the log has no duplicate rows.
    train(tiny_job_config(tmp_path, data_dir=str(dataset), steps=20), explicit_flags=["steps"])
    rows = read_log(run_dir)
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16, 20]
    # the CPU seconds are restored with the checkpoint and continue (not restarted from 0)
    assert [float(r["cpu_s"]) for r in rows[:3]] == cpu and float(rows[3]["cpu_s"]) > cpu[2]
    assert restore_run(run_dir).step == 20

    # A flag that conflicts with the saved config is an error naming it.
    with pytest.raises(ConfigError, match="--alpha"):
        train(tiny_job_config(tmp_path, data_dir=str(dataset), steps=24, alpha=0.5),
              explicit_flags=["steps", "alpha"])


def test_monitoring_rows_per_lambda_equal_evaluate_and_best_on_test_survives_resume(tmp_path, dataset):
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    from run_folder.monitor_log import SELECTING_PURPOSE
    from training.loop import train
    from inference.restore import restore_run

    config = tiny_job_config(tmp_path, data_dir=str(dataset), steps=12, checkpoint_every=4, preview_every=0,
                             threshold_holdout=0, monitor_every=4, keep_best_on_test=True)
    train(config)
    with open(Path(config.run_dir, "metrics.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["step"]), float(r["lambda"])) for r in rows] == [
        (step, lam) for step in (4, 8, 12) for lam in (0.1, 0.0, 1.0)]
    # --keep_best_on_test: the rows select a checkpoint, and their purpose says so
    assert all(r["weights"] == "ema" and r["purpose"] == SELECTING_PURPOSE for r in rows)
    # the monitored AUROC of the last step is what evaluate.py computes for that checkpoint, lambda by lambda
    summary = evaluate_run(config.run_dir, EvalSettings(), log=lambda *a: None)
    assert summary.step == 12
    with open(Path(summary.eval_dir, "metrics.csv"), newline="") as handle:
        evaluated = {round(float(r["lambda"]), 6): float(r["image_auroc"]) for r in csv.DictReader(handle)}
    for row in rows[-3:]:
        assert float(row["image_auroc"]) == pytest.approx(evaluated[float(row["lambda"])], abs=1e-6)
    # and so is the reconstruction specificity (the same on each lambda's row of a step)
    ratio = summary.diagnostics["reconstruction_specificity"]["ratio"]
    assert all(float(row["reconstruction_specificity"]) == pytest.approx(ratio, abs=1e-6) for row in rows[-3:])
    assert len({row["reconstruction_specificity"] for row in rows}) > 1  # it is measured at each step
    # the best-on-test checkpoint is the first step with the highest AUROC at score_lambda
    monitored = [(int(r["step"]), float(r["image_auroc"])) for r in rows if float(r["lambda"]) == 0.1]
    best_step = max(monitored, key=lambda item: (item[1], -item[0]))[0]
    assert restore_run(config.run_dir, checkpoint="best_on_test").step == best_step
    # resumed, the best so far is read back from metrics.csv: the kept checkpoint changes only on a higher AUROC.
    # The best row is raised above any reachable AUROC, so a resumed run that forgot it would replace it.
    text = Path(config.run_dir, "metrics.csv").read_text().splitlines()
    index = 1 + [(int(r["step"]), float(r["lambda"])) for r in rows].index((best_step, 0.1))
    fields = text[index].split(",")
    fields[-2] = "1.5"  # image_auroc (the last column is the specificity)
    text[index] = ",".join(fields)
    Path(config.run_dir, "metrics.csv").write_text("\n".join(text) + "\n")
    train(tiny_job_config(tmp_path, data_dir=str(dataset), steps=16, checkpoint_every=4, preview_every=0,
                          threshold_holdout=0, monitor_every=4, keep_best_on_test=True), explicit_flags=["steps"])
    with open(Path(config.run_dir, "metrics.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [4] * 3 + [8] * 3 + [12] * 3 + [16] * 3
    assert restore_run(config.run_dir, checkpoint="best_on_test").step == best_step


def test_resume_drops_log_rows_after_the_checkpoint(tmp_path, dataset):
    """Rows written after the last checkpoint (e.g. before a kill -9) are dropped on resume, not duplicated."""
    from training.loop import train

    config = tiny_job_config(tmp_path, data_dir=str(dataset), steps=8, preview_every=0)
    train(config)
    # Simulate a crash after step 8's checkpoint at 6 only: remove ckpt-8 so the latest is 6.
    ckpt_dir = Path(config.run_dir, "checkpoints")
    for path in ckpt_dir.glob("ckpt-8*"):
        path.unlink()
    (ckpt_dir / "checkpoint").write_text('model_checkpoint_path: "ckpt-6"\nall_model_checkpoint_paths: "ckpt-6"\n')
    train(tiny_job_config(tmp_path, data_dir=str(dataset), steps=12, preview_every=0), explicit_flags=["steps"])
    assert [int(r["step"]) for r in read_log(config.run_dir)] == [4, 8, 12]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, dataset, monkeypatch):
    from training.loop import train

    poison_critic_loss(monkeypatch, at_step=7)
    config = tiny_job_config(tmp_path, data_dir=str(dataset), steps=12, preview_every=0)
    with pytest.raises(TrainingDiverged, match="critic_loss became nan at step 7"):
        train(config)
    checkpoints = sorted(p.name for p in Path(config.run_dir, "checkpoints").glob("ckpt-*.index"))
    assert checkpoints == ["ckpt-6.index"]


def test_sigterm_checkpoints_then_resume_reaches_the_requested_step(tmp_path, dataset):
    run_dir = tmp_path / "run"
    args = ["--category=widget", f"--data_dir={dataset}", f"--run_dir={run_dir}", "--channels=1",
            "--latent_size=8", "--batch_size=4", "--image_size=32", "--d_iter=2", "--log_every=2",
            "--checkpoint_every=100000", "--preview_every=0", "--threshold_holdout=0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen([sys.executable, str(REPO / "train.py"), "--steps=100000"] + args, cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log_path = run_dir / "train_log.csv"
    deadline = time.time() + 300
    while time.time() < deadline and (not log_path.exists() or len(log_path.read_text().splitlines()) < 3):
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr  # 128 + SIGTERM: the caller (sweep.py, a shell) sees it did not finish
    assert "SIGTERM: saving checkpoint..." in stderr
    assert "SIGTERM: checkpoint written at step" in stderr + _
    assert "Traceback" not in stderr
    saved = sorted(int(p.name.split("-")[1].split(".")[0]) for p in (run_dir / "checkpoints").glob("ckpt-*.index"))
    assert len(saved) == 1 and saved[0] >= 4
    target = saved[0] + 6
    # resuming needs only the run folder: every other setting comes from its config.json
    result = run_script([f"--steps={target}", f"--run_dir={run_dir}"])
    assert result.returncode == 0, result.stderr
    steps = [int(r["step"]) for r in read_log(run_dir)]
    assert steps[-1] == target and len(steps) == len(set(steps)) and steps == sorted(steps)


@pytest.mark.parametrize("args, message", [
    ([], "--category is required"),
    (["--category=widget", "--data_dir=/nonexistent/data"], "/nonexistent/data"),
    (["--category=nosuch", "--data_dir={data}"], "nosuch"),
    (["--category=widget", "--data_dir={data}", "--alpha=2"], "--alpha"),
    (["--category=widget", "--data_dir={data}", "--image_size=100"], "--image_size"),
    (["--category=widget", "--data_dir={data}", "--steps=0"], "--steps"),
    (["--category=widget", "--data_dir={data}", "--log_every=0"], "--log_every"),
    (["--category=widget", "--data_dir={data}", "--keep_checkpoints=0"], "--keep_checkpoints"),
    (["--category=widget", "--data_dir={data}", "--keep_checkpoints=-1"], "--keep_checkpoints"),
    (["--category=widget", "--data_dir={data}", "--monitor_every=-5"], "--monitor_every"),
    (["--category=widget", "--data_dir={data}", "--steps=abc"], "--steps=abc"),  # malformed: exit 2, not absl's 1
    (["--category=widget", "--data_dir={data}", "--no_such_flag=1"], "no_such_flag"),
])
def test_bad_flags_and_paths_give_one_line_and_exit_2(tmp_path, dataset, args, message):
    args = [a.replace("{data}", str(dataset)) for a in args] + [f"--run_dir={tmp_path / 'run'}"]
    result = run_script(args)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not SHARED_BOTTLE.is_dir(), reason="../shared/data/mvtec-ad/bottle is not on this machine")
def test_a_few_steps_on_real_bottle(tmp_path):
    from training.loop import train
    config = TrainConfig(category="bottle", data_dir=str(SHARED_BOTTLE.parent), run_dir=str(tmp_path / "run"),
                         steps=6, channels=1, batch_size=4, d_iter=2, log_every=3, checkpoint_every=6,
                         preview_every=0, threshold_holdout=0.05)
    train(config)
    rows = read_log(config.run_dir)
    assert [int(r["step"]) for r in rows] == [3, 6]
    saved = json.loads(Path(config.run_dir, "config.json").read_text())
    assert saved["dataset"]["train_images"] + saved["dataset"]["threshold_holdout_images"] == 209
    assert saved["dataset"]["test_images"] == 83 and saved["dataset"]["model_input_size"] == 128


TINY_FLAGS = ["--channels=1", "--latent_size=8", "--image_size=32", "--log_every=4", "--preview_every=0"]


def test_fast_recipe_sets_its_values_and_explicit_flags_win(tmp_path, dataset):
    from config import RECIPE_SETTINGS
    from inference.restore import restore_run

    run_dir = tmp_path / "fast"
    result = run_script(["--category=widget", f"--data_dir={dataset}", f"--run_dir={run_dir}", "--recipe=fast",
                         "--steps=24", "--batch_size=4", "--alpha_warmup_steps=8", "--threshold_holdout=0"]
                        + TINY_FLAGS)
    assert result.returncode == 0, result.stderr
    saved = json.loads((run_dir / "config.json").read_text())
    config = saved["config"]
    assert config["recipe"] == "fast" and config["protocol"] == "fair"
    expected = dict(RECIPE_SETTINGS["fast"], batch_size=4, alpha_warmup_steps=8)  # the two explicit flags win
    assert {name: config[name] for name in expected} == expected
    assert saved["preset_settings"] == {k: v for k, v in RECIPE_SETTINGS["fast"].items()
                                        if k not in ("batch_size", "alpha_warmup_steps")}
    restored = restore_run(str(run_dir))
    model = restored.model
    # d_iter 1: 12 critic and 12 G/E updates in 24 batches; the recipe's learning rates and betas are in use
    assert int(model.critic_optimizer.iterations.numpy()) == 12
    assert int(model.ge_optimizer.iterations.numpy()) == 12
    assert float(model.ge_optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    assert float(model.critic_optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
    assert (model.ge_optimizer.beta_1, model.ge_optimizer.beta_2) == (0.5, 0.999)
    # past the warm start (8 batches) alpha is the recipe's 0.1: G/E total = 0.9 adversarial + 0.1 consistency
    last = read_log(str(run_dir))[-1]
    assert int(last["step"]) == 24
    assert float(last["generator_encoder_total"]) == pytest.approx(
        0.9 * float(last["adversarial_loss"]) + 0.1 * float(last["consistency_loss"]), rel=1e-3)


def test_authors_protocol_end_to_end(tmp_path, dataset):
    """--protocol=authors: its settings in config.json, monitoring rows that select, the best-on-test checkpoint
    at the first step with the highest monitored AUROC, and evaluate.py scoring that checkpoint's last weights."""
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    from run_folder.monitor_log import SELECTING_PURPOSE

    run_dir = tmp_path / "authors"
    result = run_script(["--category=widget", f"--data_dir={dataset}", f"--run_dir={run_dir}",
                         "--protocol=authors", "--monitor_every=4", "--steps=12", "--batch_size=4", "--d_iter=2"]
                        + TINY_FLAGS)
    assert result.returncode == 0, result.stderr
    saved = json.loads((run_dir / "config.json").read_text())
    config = saved["config"]
    assert (config["protocol"], config["ema_every"], config["ema_warmup"], config["ema_decay"],
            config["keep_best_on_test"], config["threshold_holdout"], config["monitor_every"]) == (
        "authors", 10, False, 0.999, True, 0.0, 4)  # --monitor_every given explicitly wins over the 1,000
    assert "monitor_every" not in saved["preset_settings"] and saved["preset_settings"]["ema_every"] == 10
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["lambda"]) == 0.1]
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    assert all(r["purpose"] == SELECTING_PURPOSE for r in rows)
    aurocs = [float(r["image_auroc"]) for r in rows]
    best_step = [4, 8, 12][aurocs.index(max(aurocs))]
    best = sorted((run_dir / "checkpoints_best_on_test").glob("ckpt-*.index"))
    assert [p.name for p in best] == [f"ckpt-{best_step}.index"]
    assert not (run_dir / "holdout_scores.csv").exists()  # trained on all of train/good, as the authors

    summary = evaluate_run(str(run_dir), EvalSettings(), log=lambda *a: None)
    assert (summary.checkpoint, summary.weights, summary.step) == ("best_on_test", "last", best_step)
    assert summary.eval_dir == str(run_dir / "eval")
    assert {row["protocol"] for row in summary.metrics} == {"authors"}
    # predict.py / export.py load the same checkpoint and weights by default
    from inference.predict_images import Predictor
    predictor = Predictor(str(run_dir))
    assert (predictor.checkpoint, predictor.weights, predictor.restored.step) == ("best_on_test", "last", best_step)
