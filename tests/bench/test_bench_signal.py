"""bench/signal_propagation.py: rms and spread per encoder layer."""
import numpy as np
import pytest

from bench import signal_propagation as sp


def test_rms_and_spread_hand_computed():
    a = np.array([[1.0, -1.0], [3.0, 1.0]])
    assert sp.rms(a) == pytest.approx(np.sqrt((1 + 1 + 9 + 1) / 4))
    # batch mean (2, 0): deviations (-1, -1), (1, 1)
    assert sp.spread(a) == pytest.approx(1.0)


def test_propagate_rows_and_identical_images_have_no_spread():
    from models.encoder import Encoder
    encoder = Encoder(image_size=32, channels=1, latent_size=4)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    rows = sp.propagate(encoder, x)
    assert [name.split()[0] for name, _, _ in rows] == ["input"] + [f"block{i}" for i in range(6)] + ["E(x)"]
    assert rows[0][1:] == (pytest.approx(sp.rms(x)), pytest.approx(sp.spread(x)))
    z = np.asarray(encoder(x))
    assert rows[-1][1:] == (pytest.approx(sp.rms(z)), pytest.approx(sp.spread(z)))
    same = np.repeat(x[:1], 4, axis=0)
    assert all(spread == pytest.approx(0.0, abs=1e-6) for _, _, spread in sp.propagate(encoder, same))
    assert all(spread > 0 for _, _, spread in rows)
