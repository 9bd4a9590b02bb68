"""sweep.py: the plan (skip finished runs, resume interrupted ones), the train.py command lines, the GPU slots
and the scheduler (with stand-in commands, no training), then one end-to-end sweep of two tiny categories."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sweep
from errors import ConfigError
from tests.helpers import REPO
from tests.helpers.images import make_category


def fake_run(sweep_dir, category, alpha=1e-4, checkpoints=(), state=True):
    """A run folder as train.py leaves it: config.json and checkpoints/ckpt-N.index (+ the state file)."""
    run = Path(sweep_dir, sweep.run_name(category, alpha))
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"category": category}}))
    for step in checkpoints:
        (run / "checkpoints" / f"ckpt-{step}.index").write_text("")
    if checkpoints and state:
        last = max(checkpoints)
        (run / "checkpoints" / "checkpoint").write_text(
            f'model_checkpoint_path: "ckpt-{last}"\n'
            + "".join(f'all_model_checkpoint_paths: "ckpt-{s}"\n' for s in sorted(checkpoints)))
    return run


def test_plan_skips_finished_resumes_interrupted_and_starts_new(tmp_path):
    fake_run(tmp_path, "bottle", checkpoints=(1000, 2000))          # finished (steps 2000)
    fake_run(tmp_path, "carpet", checkpoints=(1000,))               # interrupted
    fake_run(tmp_path, "grid")                                      # config.json, no checkpoint yet
    fake_run(tmp_path, "tile", checkpoints=(1000, 3000))            # trained further than asked
    tasks = sweep.plan(["bottle", "carpet", "grid", "tile", "wood"], str(tmp_path), steps=2000, alpha=1e-4)
    assert [(t.category, t.action, t.last_step) for t in tasks] == [
        ("bottle", "skip", 2000), ("carpet", "resume", 1000), ("grid", "resume", None), ("tile", "skip", 3000),
        ("wood", "train", None)]
    assert tasks[0].run_dir == os.path.join(str(tmp_path), "bottle-alpha0.0001")
    # a larger --steps resumes the finished run
    assert sweep.plan(["bottle"], str(tmp_path), steps=4000, alpha=1e-4)[0].action == "resume"
    # another alpha is another run folder
    assert sweep.plan(["bottle"], str(tmp_path), steps=2000, alpha=0.0)[0].action == "train"


def test_last_checkpoint_step(tmp_path):
    assert sweep.last_checkpoint_step(fake_run(tmp_path, "a")) is None
    assert sweep.last_checkpoint_step(fake_run(tmp_path, "b", checkpoints=(6, 12))) == 12
    assert sweep.last_checkpoint_step(fake_run(tmp_path, "c", checkpoints=(6, 12), state=False)) == 12
    stale = fake_run(tmp_path, "d", checkpoints=(6,))
    (stale / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-99"\n')  # its files are gone
    assert sweep.last_checkpoint_step(stale) == 6


def test_official_categories_found_in_paper_order(tmp_path):
    for name in ("bottle", "carpet", "my_parts", "zipper"):
        (tmp_path / name).mkdir()
    (tmp_path / "grid").write_text("a file, not a category folder")
    assert sweep.official_categories(str(tmp_path)) == ["carpet", "bottle", "zipper"]


def test_train_command_passes_per_type_and_extra_flags():
    task = sweep.Task("carpet", "runs/sweep/carpet-alpha0.0001", "train")
    type_flags = {"object": "--image_size=32", "texture": "--image_size=64 --patch_size=32"}
    command = sweep.train_command(task, "data", 10, 1e-4, ["--channels=1"], type_flags)
    assert command[1].endswith("train.py")
    assert command[2:] == ["--category=carpet", "--data_dir=data", "--run_dir=runs/sweep/carpet-alpha0.0001",
                           "--steps=10", "--alpha=0.0001", "--image_size=64", "--patch_size=32", "--channels=1"]
    bottle = sweep.train_command(sweep.Task("bottle", "r", "train"), "data", 10, 0.0, [], type_flags)
    assert bottle[-2:] == ["--alpha=0", "--image_size=32"]


@pytest.mark.parametrize("extra", [["--steps=5"], ["--run_dir=x"], ["--category=bottle"], ["channels=1"]])
def test_extra_flags_owned_by_the_sweep_are_refused(extra):
    with pytest.raises(ConfigError):
        sweep.check_extra_flags(extra)
    sweep.check_extra_flags(["--channels=1", "--strategy=mirrored"])


def test_gpu_slots(monkeypatch):
    assert sweep.detect_gpus("none") == []
    assert sweep.detect_gpus("0, 2") == ["0", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert sweep.detect_gpus("auto") == ["3", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert sweep.detect_gpus("auto") == []
    assert sweep.device_slots([], 1, 0) == [None]
    assert sweep.device_slots(["0", "1", "2", "3"], 1, 0) == ["0", "1", "2", "3"]
    assert sweep.device_slots(["0", "1", "2", "3"], 2, 0) == ["0,1", "2,3"]
    assert sweep.device_slots(["0", "1", "2"], 1, 2) == ["0", "1"]
    with pytest.raises(ConfigError):
        sweep.device_slots(["0"], 2, 0)


def test_scheduler_runs_one_process_per_gpu(tmp_path):
    """Stand-in commands record CUDA_VISIBLE_DEVICES and overlap in time; one fails."""
    tasks = [sweep.Task(c, str(tmp_path / c), "train") for c in ("a", "b", "c")]
    tasks.append(sweep.Task("done", str(tmp_path / "done"), "skip"))
    record = ("import os, sys, time; time.sleep(0.5); "
              "open(sys.argv[1], 'w').write(os.environ.get('CUDA_VISIBLE_DEVICES', '')); sys.exit(int(sys.argv[2]))")
    commands = {t.category: [sys.executable, "-c", record, str(tmp_path / f"{t.category}.gpu"),
                             "3" if t.category == "b" else "0"] for t in tasks}
    messages = []
    codes = sweep.run_tasks(tasks, commands, ["0", "1"], str(tmp_path / "logs"), log=messages.append)
    assert codes == {"a": 0, "b": 3, "c": 0}
    assert (tmp_path / "a.gpu").read_text() == "0" and (tmp_path / "b.gpu").read_text() == "1"
    assert (tmp_path / "c.gpu").read_text() in ("0", "1")
    assert not (tmp_path / "done.gpu").exists()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["a.log", "b.log", "c.log"]
    assert "[b] FAILED (exit 3)" in messages


def run_sweep(args, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, str(REPO / "sweep.py")] + args, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_bad_sweep_flags_give_one_line(tmp_path):
    result = run_sweep([f"--data_dir={tmp_path}", "--gpus=none"])
    assert result.returncode == 2 and "no MVTec AD category folder" in result.stderr
    (tmp_path / "bottle").mkdir()
    result = run_sweep([f"--data_dir={tmp_path}", "--gpus=none", "--", "--steps=3"])
    assert result.returncode == 2 and "the sweep sets --steps itself" in result.stderr


@pytest.mark.slow  # two tiny trainings and one evaluation: about 1-3 minutes on 2 busy cores
def test_sweep_of_two_tiny_categories(tmp_path):
    data, out = tmp_path / "data", tmp_path / "sweep"
    make_category(str(data), "bottle", train=6, test={"good": 2, "broken_large": 2})
    make_category(str(data), "carpet", train=6, test={"good": 2, "cut": 2}, sizes=((70, 70), (64, 64)))
    common = [f"--data_dir={data}", f"--sweep_dir={out}", "--steps=2", "--gpus=none", "--object_flags=--image_size=32",
              "--texture_flags=--image_size=64 --patch_size=32", "--", "--channels=1", "--latent_size=8",
              "--batch_size=4", "--d_iter=1", "--preview_every=0", "--threshold_holdout=0"]
    first = run_sweep(["--categories=bottle", "--noevaluate"] + common)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sweep.last_checkpoint_step(out / "bottle-alpha0.0001") == 2
    second = run_sweep(common)          # every official category found: bottle is done, carpet is new
    assert second.returncode == 0, second.stderr[-3000:]
    assert "bottle       skip (last checkpoint at step 2 of 2)" in second.stdout
    assert "carpet       train" in second.stdout
    saved = json.loads((out / "carpet-alpha0.0001" / "config.json").read_text())["config"]
    assert (saved["image_size"], saved["patch_size"], saved["channels"]) == (64, 32, 1)
    table = (out / "results.md").read_text()
    assert "bottle" in table and "carpet" in table
    third = run_sweep(["--noevaluate"] + common)
    assert third.returncode == 0 and third.stdout.count(" skip ") == 2
