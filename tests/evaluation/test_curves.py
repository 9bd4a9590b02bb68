"""evaluation/curves.py: the curves drawn are the numbers in the runs' train_log.csv and metrics.csv."""
import numpy as np
from matplotlib.image import imread

from evaluation.curves import read_curves, training_curves_plot


def _write_run(folder, with_monitoring):
    folder.mkdir()
    (folder / "train_log.csv").write_text(
        "step,critic_loss,gradient_penalty,image_reconstruction,images_per_s\n"
        "100,-5.0,1.5,900.0,10\n200,-7.5,1.25,800.0,11\n")
    if with_monitoring:
        (folder / "metrics.csv").write_text(
            'step,purpose,weights,lambda,image_auroc\n1000,"monitoring (test set)",ema,0.1,0.625\n'
            '2000,"monitoring (test set)",ema,0.1,0.75\n')
    return folder


def test_read_curves(tmp_path):
    curves = read_curves(_write_run(tmp_path / "a", with_monitoring=True))
    assert set(curves) == {"image_reconstruction", "critic_loss", "gradient_penalty", "image_auroc"}
    np.testing.assert_array_equal(curves["image_reconstruction"][0], [100, 200])
    np.testing.assert_array_equal(curves["image_reconstruction"][1], [900.0, 800.0])
    np.testing.assert_array_equal(curves["critic_loss"][1], [-5.0, -7.5])
    np.testing.assert_array_equal(curves["image_auroc"][0], [1000, 2000])
    np.testing.assert_array_equal(curves["image_auroc"][1], [0.625, 0.75])
    assert "image_auroc" not in read_curves(_write_run(tmp_path / "b", with_monitoring=False))
    assert read_curves(tmp_path / "missing") == {}


def test_read_curves_takes_the_runs_score_lambda_from_several_monitored_lambdas(tmp_path):
    from config import TrainConfig
    folder = _write_run(tmp_path / "c", with_monitoring=False)
    (folder / "metrics.csv").write_text(
        "step,purpose,weights,lambda,image_auroc\n"
        "1000,m,ema,0.5,0.6\n1000,m,ema,0.0,0.1\n1000,m,ema,1.0,0.2\n"
        "2000,m,ema,0.5,0.7\n2000,m,ema,0.0,0.3\n2000,m,ema,1.0,0.4\n")
    curves = read_curves(folder)  # no config.json: the first row's lambda (0.5)
    np.testing.assert_array_equal(curves["image_auroc"][0], [1000, 2000])
    np.testing.assert_array_equal(curves["image_auroc"][1], [0.6, 0.7])
    TrainConfig(category="c", score_lambda=1.0).save(folder)
    np.testing.assert_array_equal(read_curves(folder)["image_auroc"][1], [0.2, 0.4])


def test_training_curves_plot(tmp_path):
    a, b = _write_run(tmp_path / "a", True), _write_run(tmp_path / "b", False)
    path = tmp_path / "curves.png"
    drawn = training_curves_plot(str(path), [str(a), str(b)], ["run a", "run b"])
    assert list(drawn) == ["run a", "run b"] and "image_auroc" in drawn["run a"]
    image = imread(path)
    assert image.shape[0] == 800 and image.shape[1] == 1460  # 14.6 x 8 inches at 100 dpi (legend on the right)
    assert training_curves_plot(str(tmp_path / "none.png"), [str(tmp_path / "missing")], ["x"]) is None
    assert not (tmp_path / "none.png").exists()
