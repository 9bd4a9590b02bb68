"""evaluation/diagnostics.py: reconstruction specificity and the mean-image baseline, against hand computations."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from evaluation.diagnostics import MeanTemplate, reconstruction_specificity, template_auroc


def test_specificity_is_zero_for_exact_and_one_for_input_independent_reconstructions():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (5, 4, 4, 3)).astype(np.float32)
    assert reconstruction_specificity(x, x)["ratio"] == 0.0
    constant = np.repeat(rng.uniform(-1, 1, (1, 4, 4, 3)), 5, axis=0)
    assert reconstruction_specificity(x, constant)["ratio"] == pytest.approx(1.0, rel=1e-6)


def test_specificity_hand_computed():
    x = np.array([[0.0, 0.0], [1.0, 1.0]])
    r = np.array([[0.5, 0.0], [1.0, 0.0]])
    # own: |x0 - r0| = 0.5, |x1 - r1| = 1 -> 0.75; cross: |x0 - r1| = 1, |x1 - r0| = 0.5 + 1 = 1.5 -> 1.25
    result = reconstruction_specificity(x, r)
    assert result["own_error"] == pytest.approx(0.75) and result["cross_error"] == pytest.approx(1.25)
    assert result["ratio"] == pytest.approx(0.6) and result["images"] == 2
    with pytest.raises(ValueError):
        reconstruction_specificity(x[:1], r[:1])


def test_mean_template_distances_per_patch_max_and_auroc():
    train = np.zeros((2, 4, 4, 1), np.uint8)
    train[1] = 255  # mean image: 127.5 everywhere, i.e. 0.0 in [-1, 1]
    template = MeanTemplate(patch_size=2)
    template.add(train[:1])
    template.add(train[1:])
    np.testing.assert_allclose(template.patches(), np.zeros((4, 2, 2, 1)))
    test = np.zeros((3, 4, 2, 2, 1), np.float32)  # 3 images as grids of 4 patches
    test[1, 2] = 0.5   # one patch off by 0.5 per pixel: distance 4 * 0.5 = 2
    test[2, :] = -0.25  # every patch off by 0.25: distance 1 per patch
    np.testing.assert_allclose(template.distances(test), [0.0, 2.0, 1.0])
    labels = np.array([0, 1, 1])
    assert template_auroc(labels, template.distances(test)) == roc_auc_score(labels, [0.0, 2.0, 1.0])
