"""The Python API (inference/detector.py): numpy images in, the same scores, threshold and verdicts as predict.py."""
import numpy as np
import pytest

from errors import ConfigError
from tests.helpers.images import pattern, save_image
from tests.helpers.runs import read_csv, reference_scores


@pytest.fixture(scope="module")
def detector(object_run):
    from inference.detector import load_detector
    return load_detector(object_run[0])


def _images():
    return [pattern(32, 32, seed=201), pattern(45, 60, seed=202), pattern(36, 30, seed=203)]


def test_scores_of_numpy_images_equal_scores_of_the_same_files(detector, object_run, tmp_path):
    images = _images()
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        save_image(paths[-1], image)
    want, out = reference_scores(object_run[0], paths)
    got = detector.score(images)
    np.testing.assert_allclose(got.scores, want, rtol=1e-6)
    np.testing.assert_allclose(got.anomaly_maps, out["anomaly_map"], rtol=1e-5, atol=1e-6)
    assert got.anomaly_maps.shape == (3, detector.image_size, detector.image_size)
    np.testing.assert_allclose(detector.score_files(paths).scores, want, rtol=1e-6)


def test_verdicts_and_normalized_scores_follow_the_threshold(detector):
    got = detector.score(_images())
    value = detector.threshold.value
    assert detector.threshold.source == "holdout quantile"
    np.testing.assert_array_equal(got.anomalous, got.scores > value)
    np.testing.assert_allclose(got.normalized_scores, got.scores / value)
    assert (got.normalized_scores > 1).tolist() == got.anomalous.tolist()


def test_threshold_is_predicts(detector, object_run, tmp_path):
    from inference.predict_images import predict
    path = str(tmp_path / "x.png")
    save_image(path, _images()[0])
    predict(object_run[0], [path], output_dir=str(tmp_path / "out"), log=lambda *a: None)
    row = read_csv(tmp_path / "out" / "predictions.csv")[0]
    assert float(row["threshold"]) == pytest.approx(detector.threshold.value, rel=1e-9)
    assert float(row["score"]) == pytest.approx(float(detector.score([_images()[0]]).scores[0]), rel=1e-6)


def test_gray_rgba_and_batch_arrays_are_the_same_images(detector):
    rgb = _images()[0]
    gray = rgb[:, :, 0]
    as_rgb = np.repeat(gray[:, :, None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    base = detector.score([as_rgb, rgb]).scores
    np.testing.assert_allclose(detector.score([gray, rgba]).scores, base, rtol=1e-6)
    np.testing.assert_allclose(detector.score(np.stack([as_rgb, rgb])).scores, base, rtol=1e-6)
    np.testing.assert_allclose(detector.score(gray[None]).scores, base[:1], rtol=1e-6)
    assert detector.score([]).scores.shape == (0,)


@pytest.mark.parametrize("images, message", [
    ([np.zeros((8, 8, 3), np.float32)], "image 0: expected uint8 pixels"),
    ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 2), np.uint8)], "image 1: expected (H, W), (H, W, 1)"),
    (np.zeros((8, 8), np.uint8), "one image: pass [image]"),
])
def test_bad_images_are_one_line_errors(detector, images, message):
    with pytest.raises(ConfigError) as err:
        detector.score(images)
    assert message in str(err.value) and "\n" not in str(err.value)
