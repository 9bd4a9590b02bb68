"""models/image_scores.py: map_max and map_topk against hand computations (numpy smoothing written out
here), the graph version of the exported model, flag validation and names."""
import math

import numpy as np
import pytest

from errors import ConfigError
from models import image_scores as S


def hand_smooth(m, sigma):
    """Gaussian smoothing written out: the sampled kernel exp(-x^2 / 2 sigma^2) on [-r, r], r = int(4 sigma +
    0.5), normalized; the half-sample symmetric border (d c b a | a b c d); rows, then columns."""
    if sigma == 0:
        return m.astype(np.float64)
    r = int(4 * sigma + 0.5)
    x = np.arange(-r, r + 1)
    w = np.exp(-0.5 * x ** 2 / sigma ** 2)
    w /= w.sum()
    padded = np.pad(m.astype(np.float64), r, mode="symmetric")
    rows = sum(w[i] * padded[i:i + m.shape[0], :] for i in range(2 * r + 1))
    return sum(w[i] * rows[:, i:i + m.shape[1]] for i in range(2 * r + 1))


def hand_scores(m, sigma, topk_percent):
    smoothed = hand_smooth(m, sigma)
    values = sorted(smoothed.ravel(), reverse=True)
    k = max(1, math.ceil(topk_percent / 100 * len(values) - 1e-9))
    return values[0], sum(values[:k]) / k


def maps(n=3, size=24, seed=0):
    rng = np.random.default_rng(seed)
    out = rng.uniform(0, 1, (n, size, size)).astype(np.float32)
    out[1, 3:6, 17:20] += 4.0   # a small hot defect
    out[2, 0, 0] += 9.0         # one hot corner pixel: smoothing spreads it out (and reflects at the border)
    return out


def test_tiny_map_by_hand_without_smoothing():
    m = np.arange(100, dtype=np.float32).reshape(1, 10, 10)   # values 0..99
    assert S.map_scores(m, S.MAP_MAX, 1.0, 0.0)[0] == 99.0
    assert S.map_scores(m, S.MAP_TOPK, 1.0, 0.0)[0] == 99.0         # 1 % of 100 values: the top one
    assert S.map_scores(m, S.MAP_TOPK, 3.0, 0.0)[0] == (99 + 98 + 97) / 3
    assert S.map_scores(m, S.MAP_TOPK, 2.5, 0.0)[0] == (99 + 98 + 97) / 3  # ceil(2.5) = 3 values
    assert S.map_scores(m, S.MAP_TOPK, 100.0, 0.0)[0] == pytest.approx(49.5)


@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.5, 3.0])
@pytest.mark.parametrize("topk", [1.0, 5.0, 12.5])
def test_aggregations_of_smoothed_maps_by_hand(sigma, topk):
    batch = maps()
    got_max = S.map_scores(batch, S.MAP_MAX, topk, sigma)
    got_topk = S.map_scores(batch, S.MAP_TOPK, topk, sigma)
    for i, m in enumerate(batch):
        want_max, want_topk = hand_scores(m, sigma, topk)
        assert got_max[i] == pytest.approx(want_max, rel=1e-5)
        assert got_topk[i] == pytest.approx(want_topk, rel=1e-5)
    if sigma > 0:  # the smoothing matters: the spike of map 2 is spread out
        assert got_max[2] < batch[2].max() - 1.0


def test_topk_count():
    assert S.topk_count(128 * 128, 1.0) == 164        # ceil(163.84)
    assert S.topk_count(100, 1.0) == 1 and S.topk_count(100, 0.1) == 1 and S.topk_count(100, 100) == 100
    assert S.topk_count(1000, 0.7) == 7                # no float round-up to 8


@pytest.mark.parametrize("sigma", [0.0, 0.5, 2.0, 8.0])
def test_graph_version_equals_numpy(sigma):
    import tensorflow as tf
    batch = maps(size=32, seed=1)
    for image_score in (S.MAP_MAX, S.MAP_TOPK):
        graph = S.map_scores_graph(tf.constant(batch), image_score, 5.0, sigma, 32).numpy()
        np.testing.assert_allclose(graph, S.map_scores(batch, image_score, 5.0, sigma), rtol=1e-5)
    smoothed = S.smooth(batch, sigma)
    kernel = S.smoothing_matrix(32, sigma)
    np.testing.assert_allclose(kernel @ batch[2] @ kernel.T, smoothed[2], rtol=1e-5, atol=1e-6)


def test_validate_and_names():
    assert S.validate("map_topk", 0.5) == "map_topk"
    for bad in ("max", "", None):
        with pytest.raises(ConfigError, match="--image_score must be one of paper, map_max, map_topk"):
            S.validate(bad)
    for bad in (0, -1, 101, float("nan"), "x"):
        with pytest.raises(ConfigError, match="--topk_percent"):
            S.validate("map_topk", bad)
    assert [S.name(s) for s in S.IMAGE_SCORES] == ["paper", "map_max", "map_topk"]
    assert S.name("map_topk", 5) == "map_topk5" and S.name("map_max", 5) == "map_max"
    assert S.describe("map_topk", 1) == "map top-1% mean" and S.describe("map_max") == "map max"
    assert S.effective_topk("map_max", 5) is None and S.effective_topk("map_topk", 5) == 5.0
    assert S.sigma_pixels(4, 128) == 2.0 and S.sigma_pixels(4, 512) == 8.0
