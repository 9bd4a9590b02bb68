"""Metrics against scikit-learn, hand-computed examples and a brute-force AUPRO from its definition."""

from fractions import Fraction

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

from errors import UserError
from evaluation.image_metrics import (aupr, f1_max, image_auroc, max_balanced_accuracy, operating_point,
                                      per_defect_auroc)
from models.map_transforms import resize_maps, smooth_maps
from evaluation.metric_inputs import MetricUndefined
from evaluation.pixel_metrics import aupro, pixel_auroc, pro_curve

SEEDS = (0, 1, 2, 3, 4)


def random_images(seed, n=60, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.4
    labels[:2] = [False, True]
    scores = rng.normal(size=n) + labels * rng.uniform(0, 2)
    if ties:
        scores = np.round(scores, 1)
    return labels.astype(int), scores


def random_pixels(seed, n=4, size=12, ties=False):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=np.float32)
    for i in range(n - 1):  # the last image stays good
        for _ in range(rng.integers(1, 4)):
            r, c = rng.integers(0, size - 3, size=2)
            h, w = rng.integers(1, 4, size=2)
            masks[i, r:r + h, c:c + w] = 1
    maps = ndimage.gaussian_filter(masks, (0, 1, 1)) + rng.normal(scale=0.3, size=masks.shape)
    if ties:
        maps = np.round(maps, 1)
    return masks, maps.astype(np.float32)


# ------------------------------------------------------------------------------------------------ image level


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_image_auroc_matches_sklearn(seed, ties):
    labels, scores = random_images(seed, ties=ties)
    assert image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_balanced_accuracy_hand_example():
    # metrics.md: good [0.1, 0.4], anomalous [0.35, 0.8]; thresholds 0.35 and 0.8 both give 0.75.
    value, threshold = max_balanced_accuracy([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert value == 0.75
    assert threshold == 0.8  # the highest of the tied thresholds
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    predicted = scores >= threshold
    assert (predicted[2:].mean() + (~predicted[:2]).mean()) / 2 == 0.75


def test_balanced_accuracy_perfect_and_reversed():
    assert max_balanced_accuracy([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9]) == (1.0, 0.3)
    # Reversed scores: no threshold beats calling everything good (B = 0.5); the threshold is then just above
    # the highest score (sklearn's first threshold is inf), and it does give B = 0.5.
    value, threshold = max_balanced_accuracy([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.9])
    assert value == 0.5
    assert np.isfinite(threshold) and threshold > 0.9 and threshold == np.nextafter(0.9, 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_balanced_accuracy_is_the_best_over_all_thresholds(seed):
    labels, scores = random_images(seed, ties=True)
    labels = labels.astype(bool)
    candidates = np.append(np.unique(scores), np.inf)
    best = max(((scores[labels] >= t).mean() + (scores[~labels] < t).mean()) / 2 for t in candidates)
    value, threshold = max_balanced_accuracy(labels, scores)
    assert value == pytest.approx(best, abs=1e-12)
    at_threshold = ((scores[labels] >= threshold).mean() + (scores[~labels] < threshold).mean()) / 2
    assert at_threshold == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_per_defect_auroc_matches_sklearn_on_subsets(seed):
    labels, scores = random_images(seed, n=80)
    rng = np.random.default_rng(seed)
    defects = np.where(labels == 1, rng.choice(["crack", "hole", "scratch"], size=labels.size), "good")
    defects[1] = "crack"
    result = per_defect_auroc(labels, defects, scores)
    assert list(result) == sorted(set(defects[labels == 1]))
    for defect, value in result.items():
        keep = (defects == "good") | (defects == defect)
        assert value == pytest.approx(roc_auc_score(labels[keep], scores[keep]), abs=1e-12)


def test_operating_point_hand_example():
    labels = [0, 0, 0, 1, 1]
    scores = [1.0, 2.0, 5.0, 4.0, 6.0]
    # threshold 3: flagged 5 (good), 4 and 6 (anomalous): 1 false alarm of 3 good, 2 detections of 2
    assert operating_point(labels, scores, 3.0) == pytest.approx(
        {"false_alarm_rate": 1 / 3, "detection_rate": 1.0, "precision": 2 / 3, "f1": 0.8})
    # strictly greater: a score equal to the threshold is good (predict.py's rule)
    assert operating_point(labels, scores, 4.0) == pytest.approx(
        {"false_alarm_rate": 1 / 3, "detection_rate": 0.5, "precision": 0.5, "f1": 0.5})
    # nothing flagged: precision and F1 are 0 (scikit-learn's zero_division=0)
    assert operating_point(labels, scores, 6.0) == {"false_alarm_rate": 0.0, "detection_rate": 0.0,
                                                    "precision": 0.0, "f1": 0.0}


@pytest.mark.parametrize("seed", SEEDS)
def test_operating_point_matches_sklearn(seed):
    labels, scores = random_images(seed, ties=True)
    for threshold in np.quantile(scores, [0.1, 0.5, 0.9]):
        flagged = (scores > threshold).astype(int)
        got = operating_point(labels, scores, threshold)
        assert got["detection_rate"] == pytest.approx(recall_score(labels, flagged))
        assert got["precision"] == pytest.approx(precision_score(labels, flagged, zero_division=0))
        assert got["f1"] == pytest.approx(f1_score(labels, flagged, zero_division=0))
        assert got["false_alarm_rate"] == pytest.approx(1 - recall_score(1 - labels, 1 - flagged))


def test_f1_max_and_aupr_hand_example():
    labels = [0, 1, 0, 1]
    scores = [0.1, 0.4, 0.35, 0.8]
    # thresholds 0.8: P 1, R 1/2, F1 2/3; 0.4: P 1, R 1, F1 1; 0.35: P 2/3; 0.1: P 1/2
    assert f1_max(labels, scores) == (pytest.approx(1.0), 0.4)
    # AP = sum (R_n - R_n-1) P_n = 1/2 * 1 + 1/2 * 1 = 1 (every anomalous image ranks above every good one)
    assert aupr(labels, scores) == pytest.approx(1.0)
    # swap two scores: ranking 0.8 (1), 0.4 (0), 0.35 (1), 0.1 (0): AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    assert aupr([1, 0, 1, 0], [0.8, 0.4, 0.35, 0.1]) == pytest.approx(5 / 6)
    assert f1_max([1, 0, 1, 0], [0.8, 0.4, 0.35, 0.1]) == (pytest.approx(0.8), 0.35)  # P 2/3, R 1


@pytest.mark.parametrize("seed", SEEDS)
def test_f1_max_is_the_best_f1_over_all_thresholds_and_aupr_is_sklearns(seed):
    labels, scores = random_images(seed, ties=seed % 2 == 1)
    best, threshold = f1_max(labels, scores)
    brute = max(f1_score(labels, (scores >= t).astype(int)) for t in np.unique(scores))
    assert best == pytest.approx(brute)
    assert f1_score(labels, (scores >= threshold).astype(int)) == pytest.approx(best)
    assert aupr(labels, scores) == average_precision_score(labels, scores)


def test_image_metrics_undefined_with_one_class():
    with pytest.raises(MetricUndefined, match="AUROC is undefined: the test set has no anomalous images"):
        image_auroc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(MetricUndefined, match="no good images"):
        image_auroc([1, 1], [0.1, 0.2])
    with pytest.raises(MetricUndefined, match="balanced accuracy is undefined: the test set has no anomalous"):
        max_balanced_accuracy([0, 0], [0.1, 0.2])
    with pytest.raises(MetricUndefined, match="no good images"):
        per_defect_auroc([1, 1], ["crack", "hole"], [0.1, 0.2])
    with pytest.raises(MetricUndefined, match="1 of 3 scores are NaN or infinite"):
        image_auroc([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(MetricUndefined, match="the operating point is undefined: the test set has no good"):
        operating_point([1, 1], [0.1, 0.2], 0.15)
    with pytest.raises(MetricUndefined, match="the operating point is undefined: the threshold is nan"):
        operating_point([0, 1], [0.1, 0.2], float("nan"))
    with pytest.raises(MetricUndefined, match="F1-max is undefined: the test set has no anomalous"):
        f1_max([0, 0], [0.1, 0.2])
    with pytest.raises(MetricUndefined, match="AUPR is undefined: the test set has no good"):
        aupr([1, 1], [0.1, 0.2])
    assert issubclass(MetricUndefined, UserError)


def test_image_metrics_reject_bad_shapes_and_labels():
    with pytest.raises(ValueError, match="equal length"):
        image_auroc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 \\(good\\) or 1"):
        image_auroc([0, 2], [0.1, 0.2])


# ------------------------------------------------------------------------------------------------ pixel AUROC


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_pixel_auroc_matches_sklearn(seed, ties):
    masks, maps = random_pixels(seed, ties=ties)
    expected = roc_auc_score(masks.ravel().astype(int), maps.ravel())
    assert pixel_auroc(masks, maps) == pytest.approx(expected, abs=1e-9)


def test_pixel_auroc_undefined_without_anomalous_or_normal_pixels():
    with pytest.raises(MetricUndefined, match="pixel AUROC is undefined: the ground-truth masks have no anomalous"):
        pixel_auroc(np.zeros((2, 4, 4)), np.random.default_rng(0).random((2, 4, 4)))
    with pytest.raises(MetricUndefined, match="no normal pixels"):
        pixel_auroc(np.ones((1, 4, 4)), np.random.default_rng(0).random((1, 4, 4)))


# ------------------------------------------------------------------------------------------------ AUPRO


def brute_force_aupro(masks, maps, max_fpr=0.3):
    """Straight from the definition: binarize at every distinct value, label components, integrate."""
    masks = masks > 0.5
    structure = np.ones((3, 3), dtype=int)
    regions = []
    for image_index, mask in enumerate(masks):
        labeled, n = ndimage.label(mask, structure=structure)
        regions.extend((image_index, labeled == k) for k in range(1, n + 1))
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        called = maps >= t
        fpr = called[~masks].mean()
        pro = np.mean([called[i][region].mean() for i, region in regions])
        points.append((fpr, pro))
    points.append((1.0, 1.0))
    x, y = np.array(points).T
    area = 0.0
    for i in range(1, len(x)):
        if x[i] <= max_fpr:
            area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2
        else:
            if x[i - 1] < max_fpr:
                y_at = y[i - 1] + (y[i] - y[i - 1]) * (max_fpr - x[i - 1]) / (x[i] - x[i - 1])
                area += (max_fpr - x[i - 1]) * (y[i - 1] + y_at) / 2
            break
    return area / max_fpr


def hand_case(diagonal_pixel_value):
    """Two 4x5 images (36 normal pixels). Image 0: component A = two diagonally touching pixels (one
    component under 8-connectivity) valued 0.9 and `diagonal_pixel_value`; component B = two pixels at 0.8;
    one normal pixel at 0.6. Image 1 (good): three normal pixels at 0.7. Every other pixel is 0.1."""
    masks = np.zeros((2, 4, 5), dtype=np.float32)
    maps = np.full((2, 4, 5), 0.1, dtype=np.float64)
    masks[0, 0, 0] = masks[0, 1, 1] = 1  # A
    maps[0, 0, 0], maps[0, 1, 1] = 0.9, diagonal_pixel_value
    masks[0, 3, 3] = masks[0, 3, 4] = 1  # B
    maps[0, 3, 3] = maps[0, 3, 4] = 0.8
    maps[0, 2, 4] = 0.6
    maps[1, 0, :3] = 0.7
    return masks, maps


def test_aupro_hand_case_step_curve():
    # Thresholds: 0.9 -> PRO (1/2 + 0)/2 = 1/4, FPR 0; 0.8 -> PRO (1/2 + 1)/2 = 3/4, FPR 0;
    # 0.7 -> FPR 3/36 = 1/12; 0.6 -> FPR 4/36 = 1/9; 0.5 -> PRO 1; 0.1 -> FPR 1.
    # Area to 0.3: 3/4 * 1/9 + 1 * (3/10 - 1/9) = 1/12 + 17/90 = 49/180; divided by 3/10: 49/54.
    masks, maps = hand_case(0.5)
    expected = float(Fraction(49, 54))
    assert aupro(masks, maps) == pytest.approx(expected, abs=1e-12)
    assert brute_force_aupro(masks, maps) == pytest.approx(expected, abs=1e-12)
    # With 4-connectivity A would be two components and the plateau 2/3 instead of 3/4: a different value.
    assert abs(expected - (Fraction(2, 3) / 9 + Fraction(17, 90)) / Fraction(3, 10)) > 0.01


def test_aupro_hand_case_interpolated_at_max_fpr():
    # A's second pixel ties with the bulk of normal pixels (0.1): the curve goes from (1/9, 3/4) straight to
    # (1, 1). PRO at FPR 0.3 = 3/4 + 1/4 * (3/10 - 1/9) / (8/9) = 257/320.
    # Area = 3/4 * 1/9 + (3/4 + 257/320) / 2 * 17/90 = 1/12 + 8449/57600 = 13249/57600; / 0.3 = 13249/17280.
    masks, maps = hand_case(0.1)
    expected = float(Fraction(13249, 17280))
    assert aupro(masks, maps) == pytest.approx(expected, abs=1e-12)
    assert brute_force_aupro(masks, maps) == pytest.approx(expected, abs=1e-12)


def test_aupro_perfect_constant_and_reversed_maps():
    masks, _ = random_pixels(0)
    assert aupro(masks, masks * 2.0 - 1.0) == pytest.approx(1.0, abs=1e-12)
    # A constant map: one threshold with FPR = PRO = 1; the curve is the diagonal, area 0.3^2/2, / 0.3 = 0.15.
    assert aupro(masks, np.zeros_like(masks)) == pytest.approx(0.15, abs=1e-15)
    # Every normal pixel above every anomalous one: PRO is 0 up to FPR 1.
    assert aupro(masks, 1.0 - masks) == 0.0
    assert aupro(masks, masks, max_fpr=1.0) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("max_fpr", [0.3, 0.05, 1.0])
def test_aupro_matches_brute_force(seed, ties, max_fpr):
    masks, maps = random_pixels(seed, ties=ties)
    assert aupro(masks, maps, max_fpr=max_fpr) == pytest.approx(brute_force_aupro(masks, maps, max_fpr), abs=1e-9)


def test_aupro_threshold_grid_approximates_exact():
    masks, maps = random_pixels(7, n=6, size=24)
    exact = aupro(masks, maps)
    assert aupro(masks, maps, num_thresholds=2000) == pytest.approx(exact, abs=2e-3)
    # The grid includes the maps' extreme values, so a 0/1 map is still exact.
    assert aupro(masks, masks, num_thresholds=2) == pytest.approx(1.0, abs=1e-12)


def test_pro_curve_ends():
    masks, maps = random_pixels(1)
    fpr, pro = pro_curve(masks, maps)
    assert (fpr[0], pro[0]) == (0.0, 0.0) and (fpr[-1], pro[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= -1e-15)


def test_aupro_single_map_and_errors():
    masks, maps = hand_case(0.5)
    both = aupro(masks, maps)
    assert aupro(masks[0], maps[0]) != both  # the second image adds normal pixels only
    with pytest.raises(MetricUndefined, match="AUPRO is undefined: the ground-truth masks have no anomalous pixels"):
        aupro(np.zeros((2, 4, 4)), np.random.default_rng(0).random((2, 4, 4)))
    with pytest.raises(MetricUndefined, match="NaN or infinite"):
        aupro(masks, np.where(masks > 0, np.nan, maps))
    with pytest.raises(ValueError, match="equal shapes"):
        aupro(masks, maps[:1])
    with pytest.raises(ValueError, match="max_fpr"):
        aupro(masks, maps, max_fpr=0.0)


# ------------------------------------------------------------------------------------------------ map helpers


def test_smooth_maps_filters_each_map_separately():
    maps = np.zeros((2, 9, 9), dtype=np.float32)
    maps[0, 4, 4] = 1.0
    smoothed = smooth_maps(maps, sigma=1.5)
    assert smoothed.dtype == np.float32 and smoothed.shape == maps.shape
    np.testing.assert_allclose(smoothed[0], ndimage.gaussian_filter(maps[0], 1.5), atol=1e-7)
    assert np.all(smoothed[1] == 0)  # nothing leaks from map 0 into map 1
    assert smoothed[0].sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(smooth_maps(maps, 0), maps)
    np.testing.assert_allclose(smooth_maps(maps[0], 1.5), smoothed[0], atol=1e-7)


def test_resize_maps_bilinear_half_pixel_centres():
    up = resize_maps(np.array([[[0.0, 1.0]]]), (1, 4))
    np.testing.assert_allclose(up, [[[0.0, 0.25, 0.75, 1.0]]])
    maps = np.arange(32, dtype=np.float32).reshape(2, 4, 4)
    np.testing.assert_allclose(resize_maps(maps, 4), maps)
    down = resize_maps(maps, 2)  # 2x downscale samples the centre of each 2x2 block: its mean
    np.testing.assert_allclose(down, maps.reshape(2, 2, 2, 2, 2).mean(axis=(2, 4)))
    assert resize_maps(maps[0], (8, 6)).shape == (8, 6)
    assert resize_maps(np.ones((1, 3, 3), dtype=np.uint8), 5).dtype == np.float32
