"""training/hooks.py: a hook added with train(config, hooks=[...]) is called once at the start and at the end,
after every update with the step and its logs, after the built-in hooks (NaN check, log row, checkpoint,
preview; at the end the last checkpoint and the hold-out scores) and before the stop request; the example hook
of docs/ARCHITECTURE.md runs."""
import csv
import math
import os
import re
import signal
import time
from pathlib import Path

import pytest

from config import TrainConfig
from errors import Interrupted, TrainingDiverged
from tests.helpers import REPO
from tests.helpers.faults import poison_critic_loss
from tests.helpers.images import make_category
from training.hooks import Hook

LOSSES = ("critic_loss", "gradient_penalty", "adversarial_loss", "image_reconstruction")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_category(str(root), "widget", train=10, test={"good": 2, "crack": 2})
    return root


def job_config(tmp_path, dataset, **overrides):
    values = dict(category="widget", data_dir=str(dataset), run_dir=str(tmp_path / "run"), steps=12, channels=1,
                  latent_size=8, batch_size=4, image_size=32, d_iter=2, log_every=4, checkpoint_every=6,
                  preview_every=6, threshold_holdout=0.2, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


class Recorder(Hook):
    """Records every call, with what the run folder holds at that moment."""

    def __init__(self):
        self.calls = []

    def folder(self):
        run = Path(self.job.run_dir)
        with open(run / "train_log.csv", newline="") as handle:
            rows = {int(row["step"]): row for row in csv.DictReader(handle)}
        return {"rows": rows, "checkpoints": sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")),
                "previews": sorted(p.name for p in (run / "previews").glob("*.png")),
                "holdout": (run / "holdout_scores.csv").is_file()}

    def on_train_begin(self, logs=None):
        self.calls.append(("begin", dict(logs)))

    def on_batch_end(self, step, logs=None):
        self.calls.append(("batch", step, dict(logs), self.folder()))

    def close(self):
        self.calls.append(("close",))

    def on_train_end(self, logs=None):
        self.calls.append(("end", dict(logs), self.folder()))

    def steps(self):
        return [call[1] for call in self.calls if call[0] == "batch"]


def test_a_users_hook_sees_every_step_after_the_built_in_hooks(tmp_path, dataset):
    from training.loop import train
    config = job_config(tmp_path, dataset)
    hook = Recorder()
    train(config, log=lambda *a: None, hooks=[hook])
    assert hook.job.run_dir == config.run_dir

    # begin once, 12 steps, then close and end once
    assert [call[0] for call in hook.calls] == ["begin"] + ["batch"] * 12 + ["close", "end"]
    assert hook.calls[0] == ("begin", {"step": 0, "steps": 12})
    assert hook.steps() == list(range(1, 13))
    batches = [call for call in hook.calls if call[0] == "batch"]
    for _, step, logs, _ in batches:
        assert set(logs) == {"kind", "losses", "means", "images_per_s", "batch"}
        assert tuple(logs["batch"].shape) == (4, 32, 32, 3) and logs["images_per_s"] > 0
        assert all(math.isfinite(value) for value in logs["losses"].values())
    # d_iter=2: two critic updates, then one of G and E
    assert [logs["kind"] for _, _, logs, _ in batches] == ["critic", "critic", "generator_encoder"] * 4
    assert "critic_loss" in batches[0][2]["losses"] and "image_reconstruction" in batches[2][2]["losses"]

    # means: each loss averaged over the updates of the logging interval that report it, as train_log.csv writes
    for _, step, logs, folder in batches:
        start = (step - 1) // 4 * 4
        interval = [call[2]["losses"] for call in batches if start < call[1] <= step]
        for name, value in logs["means"].items():
            reported = [losses[name] for losses in interval if name in losses]
            assert value == pytest.approx(sum(reported) / len(reported), rel=1e-12), (step, name)
        # the built-in hooks have already done this step's work: its log row, checkpoint and previews
        assert sorted(folder["rows"]) == [s for s in (4, 8, 12) if s <= step]
        if step in folder["rows"]:
            row = folder["rows"][step]
            assert {name: row[name] for name in logs["means"]} == {
                name: f"{value:.6g}" for name, value in logs["means"].items()}
            assert row["images_per_s"] == f"{logs['images_per_s']:.1f}"
        assert folder["checkpoints"] == sorted(f"ckpt-{s}.index" for s in (6, 12) if s <= step)
        assert len(folder["previews"]) == 3 * (step // 6)
    assert batches[5][3]["checkpoints"] == ["ckpt-6.index"] and batches[4][3]["checkpoints"] == []

    # at the end the last checkpoint and the hold-out scores are written before the user's on_train_end
    _, end_logs, folder = hook.calls[-1]
    assert end_logs == {"step": 12, "steps": 12}
    assert folder["checkpoints"] == ["ckpt-12.index", "ckpt-6.index"] and folder["holdout"]

    # resumed: begin names the restored step, and the steps go on from it
    resumed = Recorder()
    train(job_config(tmp_path, dataset, steps=14), explicit_flags=["steps"], log=lambda *a: None, hooks=[resumed])
    assert resumed.calls[0] == ("begin", {"step": 12, "steps": 14})
    assert resumed.steps() == [13, 14] and [call[0] for call in resumed.calls[-2:]] == ["close", "end"]


def test_a_nan_loss_stops_before_the_users_hook_sees_that_step(tmp_path, dataset, monkeypatch):
    from training.loop import train

    poison_critic_loss(monkeypatch, at_step=7)
    hook = Recorder()
    with pytest.raises(TrainingDiverged, match="critic_loss became nan at step 7"):
        train(job_config(tmp_path, dataset, preview_every=0), log=lambda *a: None, hooks=[hook])
    assert hook.steps() == [1, 2, 3, 4, 5, 6]
    assert [call[0] for call in hook.calls[-2:]] == ["batch", "close"]  # closed once, no on_train_end


class SignalAt(Recorder):
    """Sends SIGINT to this process during its on_batch_end of one step."""

    def __init__(self, step):
        super().__init__()
        self.at = step

    def on_batch_end(self, step, logs=None):
        super().on_batch_end(step, logs)
        if step == self.at:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the Python-level handler runs


def test_the_stop_request_comes_after_the_users_hooks(tmp_path, dataset, capfd):
    from training.loop import train
    hook = SignalAt(5)
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match="SIGINT: checkpoint written at step 5;"):
        train(job_config(tmp_path, dataset, preview_every=0), log=lambda *a: None, hooks=[hook])
    assert hook.steps() == [1, 2, 3, 4, 5] and hook.calls[-1] == ("close",)
    assert "SIGINT: saving checkpoint... (interrupted at step 5)" in capfd.readouterr().err
    assert sorted(p.name for p in Path(tmp_path, "run", "checkpoints").glob("ckpt-*.index")) == ["ckpt-5.index"]
    assert signal.getsignal(signal.SIGINT) is previous  # the handlers are restored


def test_the_example_hook_of_architecture_md_runs(capsys):
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    section = text[text.index("## Training hooks"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    lines = code.splitlines()
    assert any(line.startswith("train(config, hooks=[") for line in lines)
    namespace = {}
    exec("\n".join(line for line in lines if not line.startswith("train(")), namespace)  # not trained here
    hook = next(value() for value in namespace.values() if isinstance(value, type) and issubclass(value, Hook)
                and value is not Hook)
    hook.on_batch_end(499, {"means": {"image_reconstruction": 0.25}})
    hook.on_batch_end(500, {"means": {"critic_loss": 1.0}})  # an interval of critic updates only
    hook.on_batch_end(1000, {"means": {"image_reconstruction": 0.125, "critic_loss": 1.0}})
    assert capsys.readouterr().out == "step 1000: L_R 0.1250\n"
