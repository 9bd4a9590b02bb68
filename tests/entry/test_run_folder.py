"""run_folder/, the run folder's owner: the lock, atomic writes, checkpoint fallback, evaluation
folders that are swapped in whole, and the exit codes of an interrupted training (issue 16, data loss)."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import TrainConfig
from errors import ConfigError
from tests.helpers import REPO
from tests.helpers.config import tiny_config
from tests.helpers.images import make_category
import run_folder

TRAIN = dict(steps=12, d_iter=2, log_every=4, checkpoint_every=6, preview_every=0, image_size=32,
             threshold_holdout=0.2, seed=3)
PNG = (("png", "RGB"),)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run (c=1, 12 steps, checkpoints at 6 and 12) of a 32 px object category."""
    from training.loop import train
    base = tmp_path_factory.mktemp("runfolder")
    data = base / "data"
    make_category(str(data), "bottle", train=8, test={"good": 3, "crack": 2}, sizes=((32, 32),), variants=PNG)
    run = train(tiny_config(category="bottle", data_dir=str(data), run_dir=str(base / "run"), **TRAIN),
                log=lambda *a: None)
    return {"data": data, "run": Path(run), "base": base}


def copy_run(trained, tmp_path, name="run"):
    target = tmp_path / name
    shutil.copytree(trained["run"], target, ignore=shutil.ignore_patterns("eval*", "tensorboard", "previews"))
    return target


def read_log_steps(run):
    with open(run / run_folder.TRAIN_LOG_FILE, newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def holder(folder, what="train.py"):
    """Another process holding folder's lock; returns it once the lock is taken."""
    code = ("import sys, time; from run_folder import acquire_lock; "  # ENV: the repository on PYTHONPATH
            "acquire_lock(sys.argv[1], sys.argv[2]); print('locked', flush=True); time.sleep(120)")
    process = subprocess.Popen([sys.executable, "-c", code, str(folder), what], stdout=subprocess.PIPE, text=True,
                               env=ENV)
    assert process.stdout.readline().strip() == "locked"
    return process


# ---------------------------------------------------------------------------------------------- 1. the lock


def test_second_train_py_on_a_folder_being_trained_exits_2_naming_the_pid(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / run_folder.CONFIG_FILE).write_text(json.dumps({"config": TrainConfig(category="bottle").to_dict()}))
    first = holder(run)
    try:
        result = subprocess.run([sys.executable, str(REPO / "train.py"), f"--run_dir={run}", "--steps=5"], cwd=REPO,
                                env=ENV, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"pid {first.pid}" in errors[0] and "Traceback" not in result.stderr
        assert first.poll() is None  # the first is not disturbed
        assert (run / run_folder.LOCK_FILE).read_text().strip() == str(first.pid)
    finally:
        first.kill()
        first.wait()
    # the holder is gone (kill -9): its lock file is stale and does not block
    assert (run / run_folder.LOCK_FILE).read_text().strip() == str(first.pid)
    run_folder.acquire_lock(run)
    assert (run / run_folder.LOCK_FILE).read_text().strip() == str(os.getpid())
    run_folder.release_lock(run)
    assert not (run / run_folder.LOCK_FILE).exists()


def test_second_sweep_on_one_sweep_folder_exits_2_naming_the_pid(tmp_path):
    (tmp_path / "data" / "bottle").mkdir(parents=True)
    sweep_dir = tmp_path / "sweep"
    first = holder(sweep_dir, "sweep.py")
    try:
        result = subprocess.run([sys.executable, str(REPO / "sweep.py"), f"--data_dir={tmp_path / 'data'}",
                                 f"--sweep_dir={sweep_dir}", "--gpus=none", "--steps=1"], cwd=REPO, env=ENV,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"pid {first.pid}" in errors[0] and "sweep.py" in errors[0]
        assert first.poll() is None and not (sweep_dir / "bottle-alpha0.0001").exists()
    finally:
        first.kill()
        first.wait()


# ---------------------------------------------------------------------------------------------- 2. atomic writes


def test_a_failed_write_leaves_config_json_and_the_logs_whole(tmp_path, monkeypatch):
    from run_folder.train_log import COLUMNS, rewrite_csv
    config = TrainConfig(category="bottle", run_dir=str(tmp_path))
    config.save(tmp_path, {"note": "first"})
    before = (tmp_path / run_folder.CONFIG_FILE).read_text()
    log = tmp_path / run_folder.TRAIN_LOG_FILE
    rewrite_csv(log, COLUMNS, [{"step": 4}, {"step": 8}])
    log_before = log.read_text()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        config.save(tmp_path, {"note": "second"})
    with pytest.raises(OSError):  # the resume truncation of train_log.csv / metrics.csv
        rewrite_csv(log, COLUMNS, [{"step": 4}])
    monkeypatch.undo()
    assert (tmp_path / run_folder.CONFIG_FILE).read_text() == before
    assert log.read_text() == log_before
    assert sorted(p.name for p in tmp_path.iterdir()) == [run_folder.CONFIG_FILE, run_folder.TRAIN_LOG_FILE]


def test_a_failed_holdout_scores_write_keeps_the_previous_file(trained, tmp_path, monkeypatch):
    import training.loop as loop
    run = copy_run(trained, tmp_path)
    holdout = run / run_folder.HOLDOUT_SCORES_FILE
    before = holdout.read_text()
    assert len(before.splitlines()) >= 2
    real_writer = loop.csv.writer

    class FailingWriter:  # the disk fills up after the header
        def __init__(self, handle):
            self.writer, self.rows = real_writer(handle), 0

        def writerow(self, row):
            self.rows += 1
            if self.rows > 1:
                raise OSError(28, "No space left on device")
            self.writer.writerow(row)

    config = tiny_config(category="bottle", data_dir=str(trained["data"]), run_dir=str(run), **TRAIN)
    job = loop.TrainingJob(config, log=lambda *a: None)
    monkeypatch.setattr(loop.csv, "writer", FailingWriter)
    try:
        with pytest.raises(OSError):
            job.finish()
    finally:
        run_folder.release_lock(run)
    assert holdout.read_text() == before
    assert not [p.name for p in run.iterdir() if ".tmp-" in p.name]


def test_a_torn_last_log_line_is_dropped_on_read(tmp_path):
    from run_folder.train_log import rows_up_to
    log = tmp_path / run_folder.TRAIN_LOG_FILE
    log.write_text("step,critic_loss\n4,0.5\n8,0.25\n12,0.")  # killed during an append
    assert [row["step"] for row in rows_up_to(log, 100)] == ["4", "8"]


# ---------------------------------------------------------------------------------------------- 3. checkpoints


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(trained, tmp_path):
    from inference.restore import restore_run
    run = copy_run(trained, tmp_path)
    ckpt = run / run_folder.CHECKPOINT_DIR
    data = next(ckpt.glob("ckpt-12.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated
    lines = []
    restored = restore_run(str(run), log=lines.append)
    assert restored.step == 6 and restored.checkpoint_path.endswith("ckpt-6")
    assert len(lines) == 1 and "ckpt-12" in lines[0] and "ckpt-6" in lines[0]


def test_flipped_bytes_fail_the_checksum_and_fall_back(trained, tmp_path):
    from evaluation.run_inputs import find_checkpoint
    run = copy_run(trained, tmp_path)
    data = next((run / run_folder.CHECKPOINT_DIR).glob("ckpt-12.data-*"))
    raw = bytearray(data.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 64):
        raw[i] ^= 0xFF
    data.write_bytes(bytes(raw))
    assert find_checkpoint(str(run), log=lambda *a: None).endswith("ckpt-6")


def test_missing_state_file_resumes_from_the_checkpoint_files_not_step_0(trained, tmp_path):
    from training.loop import train
    run = copy_run(trained, tmp_path)
    (run / run_folder.CHECKPOINT_DIR / "checkpoint").unlink()
    assert read_log_steps(run) == [4, 8, 12]
    lines = []
    config = tiny_config(category="bottle", data_dir=str(trained["data"]), run_dir=str(run),
                         **dict(TRAIN, steps=14, keep_checkpoints=2))
    train(config, explicit_flags=["steps", "keep_checkpoints"], log=lines.append)
    assert any("resuming" in line and "from step 12" in line for line in lines), lines
    assert read_log_steps(run) == [4, 8, 12, 14]  # kept, not wiped by a restart from step 0
    # the state file was rebuilt from the files: --keep_checkpoints=2 applies to the old checkpoints too
    assert run_folder.checkpoint_steps(run / run_folder.CHECKPOINT_DIR) == [14, 12]
    assert 'model_checkpoint_path: "ckpt-14"' in (run / run_folder.CHECKPOINT_DIR / "checkpoint").read_text()


def test_resume_skips_a_truncated_newest_checkpoint(trained, tmp_path):
    from training.loop import train
    run = copy_run(trained, tmp_path)
    index = run / run_folder.CHECKPOINT_DIR / "ckpt-12.index"
    index.write_bytes(index.read_bytes()[:10])  # kill -9 while it was written
    lines = []
    config = tiny_config(category="bottle", data_dir=str(trained["data"]), run_dir=str(run),
                         **dict(TRAIN, steps=14, threshold_holdout=0.2))
    train(config, explicit_flags=["steps"], log=lines.append)
    assert [line for line in lines if "cannot be read" in line] == [
        f"warning: ckpt-12 in {run / run_folder.CHECKPOINT_DIR} cannot be read; using ckpt-6"]
    assert any("from step 6" in line for line in lines)
    assert read_log_steps(run) == [4, 8, 12, 14]


def test_garbled_state_file_and_no_readable_checkpoint(trained, tmp_path):
    from inference.restore import restore_run
    run = copy_run(trained, tmp_path)
    ckpt = run / run_folder.CHECKPOINT_DIR
    (ckpt / "checkpoint").write_text("\x00garbage{{")
    assert restore_run(str(run), log=lambda *a: None).step == 12  # the files themselves
    for data in ckpt.glob("ckpt-*.data-*"):
        data.write_bytes(b"")
    with pytest.raises(ConfigError, match="no checkpoint in .*checkpoints can be read"):
        restore_run(str(run), log=lambda *a: None)
    result = subprocess.run([sys.executable, str(REPO / "evaluate.py"), f"--run={run}"], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and str(ckpt) in errors[0], result.stderr


# ---------------------------------------------------------------------------------------------- 4. evaluation


def test_evaluation_keeps_the_previous_result_until_it_has_a_new_one(trained, tmp_path, monkeypatch):
    from evaluation import reports
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    run = copy_run(trained, tmp_path)
    settings = EvalSettings(lambdas=(0.1,))
    evaluate_run(str(run), settings, log=lambda *a: None)
    eval_dir = run / run_folder.EVAL_DIR
    (eval_dir / "my_notes.txt").write_text("mine")  # not written by evaluate.py: never deleted
    before = {p.name: p.read_bytes() for p in eval_dir.iterdir()}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reports, "write_metrics", broken)
    with pytest.raises(OSError):
        evaluate_run(str(run), settings, log=lambda *a: None)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in eval_dir.iterdir()} == before
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("eval")) == ["eval"]  # no staging left
    summary = evaluate_run(str(run), settings, log=lambda *a: None)
    assert summary.eval_dir == str(eval_dir) and (eval_dir / "my_notes.txt").read_text() == "mine"
    assert (eval_dir / "metrics.csv").is_file()


def test_output_equal_to_the_run_folder_is_refused(trained):
    from evaluation.evaluate_run import EvalSettings, evaluate_run
    run = trained["run"]
    files = sorted(p.name for p in run.iterdir())
    with pytest.raises(ConfigError, match="is the run folder itself"):
        evaluate_run(str(run), EvalSettings(output=str(run) + "/"), log=lambda *a: None)
    assert sorted(p.name for p in run.iterdir()) == files


# ---------------------------------------------------------------------------------------------- 5. exit codes


def test_a_second_signal_waits_for_the_checkpoint_write(capfd):
    from training.interrupt import StopRequest
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.requested and stop.signal_name == "SIGINT"
        assert "SIGINT: saving checkpoint..." in capfd.readouterr().err  # at once
        with stop.saving():
            os.kill(os.getpid(), signal.SIGINT)  # ignored until the write ends
            time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):  # outside a write, a second signal stops waiting
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_interrupted_training_exits_128_plus_the_signal(name, code):
    script = ("import cli\nfrom errors import Interrupted\n"
              f"def main(argv):\n    raise Interrupted({name!r}, '{name}: checkpoint written at step 7')\n"
              "cli.run_main(main, load_tensorflow=False)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == code and result.stderr.strip() == f"{name}: checkpoint written at step 7"


def test_sweep_treats_an_interrupted_child_as_not_done(tmp_path):
    import sweep
    tasks = [sweep.Task("a", str(tmp_path / "a"), "train")]
    commands = {"a": [sys.executable, "-c", "import sys; sys.exit(143)"]}
    messages = []
    assert sweep.run_tasks(tasks, commands, [None], str(tmp_path / "logs"), log=messages.append) == {"a": 143}
    assert any("not done" in m for m in messages) and not any(m.endswith("done") and "not" not in m
                                                                 for m in messages)


def test_ctrl_c_during_training_checkpoints_and_exits_130(trained, tmp_path):
    run = tmp_path / "run"
    args = [str(REPO / "train.py"), "--category=bottle", f"--data_dir={trained['data']}", f"--run_dir={run}",
            "--channels=1", "--latent_size=8", "--batch_size=4", "--image_size=32", "--d_iter=2", "--log_every=2",
            "--checkpoint_every=100000", "--preview_every=0", "--threshold_holdout=0", "--steps=100000"]
    process = subprocess.Popen([sys.executable] + args, cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    log = run / run_folder.TRAIN_LOG_FILE
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "SIGINT: saving checkpoint..." in stderr and "SIGINT: checkpoint written at step" in stderr
    assert "Traceback" not in stderr
    assert run_folder.checkpoint_steps(run / run_folder.CHECKPOINT_DIR)
    assert not (run / run_folder.LOCK_FILE).exists()  # released on the way out
