"""Shared test set-up: quiet TensorFlow, the repo root on sys.path, and a tiny TrainConfig factory."""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pytest  # noqa: E402

# Small enough that building all five networks and tracing both steps takes a few seconds on 2 CPU cores.
TINY = dict(category="test", channels=1, latent_size=8, batch_size=4)


def tiny_config(**overrides):
    """A TrainConfig for tiny models (c=1, latent 8); keyword arguments override any field."""
    from config import TrainConfig

    values = dict(TINY)
    values.update(overrides)
    return TrainConfig(**values).validate()


@pytest.fixture
def make_config():
    """The tiny_config factory as a fixture (tests call make_config(alpha=1.0, ...))."""
    return tiny_config


def poison_critic_loss(monkeypatch, at_step):
    """Make CBiGAN.train_batch report a NaN critic loss once the model's step counter reaches at_step (the
    update itself runs as usual): what the NaN guard must catch."""
    from models.cbigan import CBiGAN
    original = CBiGAN.train_batch

    def poisoned(self, x):
        kind, results = original(self, x)
        if int(self.step.numpy()) == at_step:
            results = dict(results, critic_loss=float("nan"))
        return kind, results

    monkeypatch.setattr(CBiGAN, "train_batch", poisoned)
