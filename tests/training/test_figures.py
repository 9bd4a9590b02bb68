"""Every figure type is labelled: titles, axis labels, colour bars on maps, mask contours, the legend outside the
training curves, a distinct look for each of 20 runs. Checked on the matplotlib objects, not on pixels."""
import matplotlib
import numpy as np
import pytest

from evaluation import curves, plots
from inference import heatmap_figure as H
from training import previews

RNG = np.random.default_rng(0)


def colorbars(figure):
    """The Colorbar objects of a figure (matplotlib keeps each on its axes as _colorbar)."""
    return [ax._colorbar for ax in figure.axes if getattr(ax, "_colorbar", None) is not None]


def image_axes(figure):
    """Axes showing a picture (not colour bars), in creation order."""
    return [ax for ax in figure.axes if ax.get_images() and getattr(ax, "_colorbar", None) is None]


def model_range(n, size):
    return RNG.uniform(-1.0, 1.0, (n, size, size, 3)).astype(np.float32)


# ------------------------------------------------------------------------------------------------- previews


def test_reconstruction_preview_labels_rows_columns_and_scale():
    inputs = model_range(4, 32)
    recon = np.clip(inputs + 0.3, -1.0, 1.0)
    maps = np.abs(inputs - recon).sum(-1)
    maps[0, :4, :4] = 50.0  # an outlier above the 99.5th percentile: the scale ignores it
    figure = previews.reconstruction_figure(inputs, recon, maps, title="test images, step 7",
                                            column_titles=["good", "good", "crack", "hole"])
    assert figure._suptitle.get_text() == "test images, step 7"
    grid = image_axes(figure)
    assert len(grid) == 12  # 3 rows x 4 columns
    assert [ax.get_title() for ax in grid[:4]] == ["good", "good", "crack", "hole"]
    assert [grid[row * 4].get_ylabel() for row in range(3)] == list(previews.ROW_LABELS)
    assert "input" in previews.ROW_LABELS[0] and "reconstruction" in previews.ROW_LABELS[1]
    assert "error map" in previews.ROW_LABELS[2]
    (bar,) = colorbars(figure)
    assert bar.ax.get_ylabel() == previews.ERROR_LABEL
    assert bar.norm.vmin == 0.0 and bar.norm.vmax == pytest.approx(np.percentile(maps, 99.5), rel=1e-6)
    assert bar.norm.vmax < 50.0
    for ax in grid[8:]:  # the error maps are drawn on the colour bar's scale
        assert ax.get_images()[0].norm.vmax == bar.norm.vmax
    # the default column titles name the samples; the picture is the figure rendered, larger than the tiles
    default = previews.reconstruction_figure(inputs, recon, maps)
    assert [ax.get_title() for ax in image_axes(default)[:4]] == [f"sample {i}" for i in range(1, 5)]
    assert default._suptitle.get_text()
    picture = previews.reconstruction_grid(inputs, recon, maps, title="x")
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert picture.shape[0] > 3 * 32 and picture.shape[1] > 4 * 32


def test_samples_preview_is_titled_and_labelled():
    figure = previews.samples_figure(model_range(3, 32), title="samples G(z), step 5")
    assert figure._suptitle.get_text() == "samples G(z), step 5"
    grid = image_axes(figure)
    assert len(grid) == 3 and [ax.get_title() for ax in grid] == ["z 1", "z 2", "z 3"]
    assert "G(z)" in grid[0].get_ylabel()
    assert not colorbars(figure)  # pictures, no map


# ---------------------------------------------------------------------------------------- evaluation plots


def _labels_scores():
    labels = np.r_[np.zeros(10), np.ones(12)]
    return labels, RNG.normal(labels, 0.7)


def test_roc_and_histogram_have_titles_axis_labels_and_legends():
    labels, scores = _labels_scores()
    for figure in (plots.roc_figure(labels, scores, title="bottle, step 3", auroc=0.8, threshold=0.5),
                   plots.histogram_figure(labels, scores, threshold=0.5, title="bottle, step 3")):
        (axes,) = figure.axes
        assert axes.get_title() == "bottle, step 3"
        assert axes.get_xlabel() and axes.get_ylabel()
        texts = [t.get_text() for t in axes.get_legend().get_texts()]
        assert any("threshold" in t for t in texts)
    assert plots.roc_figure(labels, scores).axes[0].get_title()  # a default title without one given
    assert plots.histogram_figure(labels, scores).axes[0].get_title()


def test_examples_have_a_colour_bar_and_mask_contours_where_masks_exist():
    n, size = 3, 32
    images = RNG.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    maps = RNG.uniform(0.0, 2.0, (n, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), np.float32)
    masks[1:, 8:20, 10:22] = 1.0  # rows 1 and 2 anomalous with a mask, row 0 good (empty mask)
    titles = ["good\nA = 1", "crack\nA = 2", "hole\nA = 3"]
    figure = plots.examples_figure(images, model_range(n, size), maps, titles, masks=masks, title="bottle")
    assert figure._suptitle.get_text() == "bottle"
    grid = image_axes(figure)
    assert len(grid) == 3 * n
    assert [ax.get_title() for ax in grid[:3]] == ["input (mask outlined)", "reconstruction G(E(x))",
                                                  "anomaly map (mask outlined)"]
    assert [grid[3 * i].get_ylabel() for i in range(n)] == titles
    (bar,) = colorbars(figure)
    assert "anomaly map" in bar.ax.get_ylabel()
    assert bar.norm.vmax == pytest.approx(np.percentile(maps, 99.5), rel=1e-6)
    for i in range(n):
        contoured = [bool(ax.collections) for ax in grid[3 * i:3 * i + 3]]
        # outline on the input and the anomaly map of the rows with a mask; none on a good row's empty mask
        assert contoured == ([True, False, True] if i else [False, False, False])
    without = plots.examples_figure(images, model_range(n, size), maps, titles, masks=None)
    assert not any(ax.collections for ax in image_axes(without))
    assert [ax.get_title() for ax in image_axes(without)[:3]] == ["input", "reconstruction G(E(x))", "anomaly map"]
    assert len(colorbars(without)) == 1


# ------------------------------------------------------------------------------------------ training curves


def _fake_runs(n, auroc=0.52):
    steps, monitored = np.arange(100, 1001, 100), np.arange(250, 1001, 250)
    return {f"run {i:02d}": {"image_reconstruction": (steps, 900.0 - steps * 0.1 * (i + 1)),
                             "critic_loss": (steps, -5.0 + 0.1 * i + np.zeros(steps.size)),
                             "gradient_penalty": (steps, 1.0 + 0.01 * i + np.zeros(steps.size)),
                             "image_auroc": (monitored, auroc + 0.001 * np.arange(monitored.size))}
            for i in range(n)}


def test_training_curves_of_20_runs_are_all_distinct_with_the_legend_outside():
    drawn = _fake_runs(20)
    figure = curves.training_curves_figure(drawn)
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert len(panels) == 4
    for ax in panels:
        assert ax.get_xlabel() == "batches" and ax.get_ylabel()
        assert ax.get_legend() is None  # no legend over the curves
        looks = {(matplotlib.colors.to_hex(line.get_color()), line.get_linestyle())
                 for line in ax.get_lines() if line.get_label() in drawn}
        assert len(looks) == 20
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == list(drawn)
    figure.canvas.draw()
    box = legend.get_window_extent()
    assert all(box.x0 >= ax.get_window_extent().x1 for ax in panels)  # right of every panel
    low, high = panels[3].get_ylim()
    assert (low, high) == curves.AUROC_RANGE  # 0.52-0.523 shown on [0.4, 1], not autoscaled


def test_run_styles_never_repeat_and_auroc_axis_widens_for_low_values():
    for n in (1, 10, 11, 17, 20, 40):
        styles = curves.run_styles(n)
        assert len(styles) == n and len(set(styles)) == n
    assert len({colour for colour, _ in curves.run_styles(17)}) == 17  # colours alone do not repeat either
    assert curves.auroc_limits([0.5, 0.9]) == (0.4, 1.0)
    assert curves.auroc_limits([0.31, 0.6]) == pytest.approx((0.2, 1.0))
    figure = curves.training_curves_figure(_fake_runs(2, auroc=0.25))
    auroc_axes = [ax for ax in figure.axes if ax.get_title() == curves.MONITOR_PANEL[1]][0]
    low, high = auroc_axes.get_ylim()
    assert low <= 0.25 and high == 1.0


# ------------------------------------------------------------------------------------------- predict heatmaps


def test_heatmap_shows_score_verdict_threshold_and_colour_bar():
    image = RNG.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    anomaly_map = np.zeros((16, 16), np.float32)
    anomaly_map[4:8, 4:8] = 3.0
    figure = H.heatmap_figure(image, anomaly_map, 12.5, 10.0, "anomalous", name="a/part.png",
                              score_text="lambda 0.1")
    heading = figure._suptitle.get_text()
    assert "a/part.png" in heading and "anomalous" in heading and "12.5 > threshold 10" in heading
    assert "lambda 0.1" in heading
    shown = image_axes(figure)
    assert [ax.get_title() for ax in shown] == ["input", "anomaly map over the input"]
    for ax in shown:
        assert ax.get_xlabel() == "x (pixels)" and ax.get_ylabel() == "y (pixels)"
        assert ax.get_images()[0].get_array().shape[:2] == (40, 60)  # the input's own size
    (bar,) = colorbars(figure)
    assert "L1 error" in bar.ax.get_ylabel() and "maximum" in bar.ax.get_ylabel()
    assert bar.norm.vmax == pytest.approx(H.resize_map(anomaly_map, 40, 60).max())
    np.testing.assert_array_equal(shown[1].get_images()[0].get_array(), H.overlay_heatmap(image, anomaly_map))
    good = H.heatmap_figure(image, anomaly_map, 8.0, 10.0, "good", vmax=6.0)
    assert "good: score 8 <= threshold 10" in good._suptitle.get_text()
    (bar,) = colorbars(good)
    assert bar.norm.vmax == 6.0 and "--heatmap_vmax" in bar.ax.get_ylabel()
