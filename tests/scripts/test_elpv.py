"""ELPV conversion (data/elpv.py, data/elpv_labels.py, data/elpv_layout.py, scripts/prepare_elpv.py) on tiny fake
label files and on the real package."""

import hashlib
import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import elpv, elpv_labels
from errors import ConfigError, DatasetError
from tests.helpers import REPO

PROB = {0: "0.0", 1: "0.3333333333333333", 2: "0.6666666666666666", 3: "1.0"}
FOLDER = {0: "good", 1: "defect_p33", 2: "defect_p67", 3: "defect_p100"}


def _png_bytes(value):
    """A 300x300 8-bit grayscale PNG whose content depends on value (so copies can be told apart)."""
    array = np.full((300, 300), value % 256, dtype=np.uint8)
    array[0, : (value % 300) + 1] = 255 - value % 256
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def make_fake(root, spec, shared_image=False):
    """spec: list of (cell_type, level) in file order; writes root/labels.csv and root/images/cellNNNN.png.

    Returns the rows as (name, level, cell_type)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows, lines = [], []
    shared = _png_bytes(7) if shared_image else None
    for i, (cell_type, level) in enumerate(spec, start=1):
        name = f"cell{i:04d}.png"
        (root / "images" / name).write_bytes(shared if shared_image else _png_bytes(i))
        lines.append(f"images/{name}  {PROB[level]:<19} {cell_type}")
        rows.append((name, level, cell_type))
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return rows


# Small set, types interleaved in file order: mono 8 good, 2/2/2 defective; poly 5 good, 1 p33, 0 p67, 3 p100.
SMALL = ([("mono", 0)] * 4 + [("poly", 0)] * 2 + [("mono", 1), ("mono", 2), ("mono", 3), ("poly", 3)]
         + [("mono", 0)] * 4 + [("poly", 0)] * 3 + [("mono", 1), ("mono", 2), ("mono", 3), ("poly", 1)]
         + [("poly", 3), ("poly", 3)])


def expected_test_good(names, fraction, seed):
    """The documented rule, restated: rank by sha256 hex of f"{seed}:{name}", take floor(f*n + .5) in [1, n-1]."""
    ranked = sorted(names, key=lambda n: (hashlib.sha256(f"{seed}:{n}".encode()).hexdigest(), n))
    k = min(max(int(np.floor(fraction * len(names) + 0.5)), 1), len(names) - 1)
    return set(ranked[:k])


def files_under(folder):
    return {p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file()}


def listing(folder, sub):
    path = Path(folder) / sub
    return {p.name for p in path.iterdir()} if path.is_dir() else set()


def test_read_labels_parses_rows_without_images(tmp_path):
    (tmp_path / "labels.csv").write_text(
        "# comment\nimages/cell0001.png  1.0                 mono\n\n"
        "images/cell0002.png  0.3333333333333333  poly\nimages/cell0003.png 0.0 mono\n")
    rows = elpv_labels.read_labels(tmp_path / "labels.csv")  # no images exist: reading labels must not open them
    assert rows == [("images/cell0001.png", 1.0, "mono"), ("images/cell0002.png", 1 / 3, "poly"),
                    ("images/cell0003.png", 0.0, "mono")]
    assert rows[1].probability == pytest.approx(1 / 3) and rows[1].cell_type == "poly"


def test_layout_split_sizes_and_labels(tmp_path):
    rows = make_fake(tmp_path / "src", SMALL)
    out = tmp_path / "out"
    summary = elpv.convert(tmp_path / "src" / "labels.csv", out, test_good_fraction=0.25, seed=0)
    assert set(summary) == {"mono", "poly"}
    for cell_type in ("mono", "poly"):
        category = out / cell_type
        mine = [r for r in rows if r[2] == cell_type]
        good = {n for n, level, _ in mine if level == 0}
        train, test_good = listing(category, "train/good"), listing(category, "test/good")
        # Good cells: split into train and test, no overlap, none lost; exactly the documented rule's test set.
        assert train | test_good == good and not train & test_good
        assert test_good == expected_test_good(sorted(good), 0.25, 0)
        # Defective cells: each in test/<its level>, never in train; no other folders, no ground_truth.
        for level in (1, 2, 3):
            assert listing(category, f"test/{FOLDER[level]}") == {n for n, lv, _ in mine if lv == level}
        assert listing(category, "train") == {"good"}
        expected_test_dirs = {"good"} | {FOLDER[lv] for _, lv, _ in mine if lv > 0}
        assert listing(category, "test") == expected_test_dirs
        assert not (category / "ground_truth").exists()
        # Copies are byte-identical to the sources, under the original names.
        for name, level, _ in mine:
            split = "test" if (level > 0 or name in test_good) else "train"
            copied = category / split / FOLDER[level] / name
            assert copied.read_bytes() == (tmp_path / "src" / "images" / name).read_bytes()
        counts = summary[cell_type]["counts"]
        assert counts == {"train/good": len(train), "test/good": len(test_good),
                          "test/defect_p33": sum(lv == 1 for _, lv, _ in mine),
                          "test/defect_p67": sum(lv == 2 for _, lv, _ in mine),
                          "test/defect_p100": sum(lv == 3 for _, lv, _ in mine)}
        assert summary[cell_type]["status"] == "written"
        assert "CC BY-NC-SA 4.0" in (category / "LICENSE.txt").read_text()
        assert "Buerhop-Lutz" in (category / "LICENSE.txt").read_text()
    # Hand-computed sizes for this set: mono 8 good -> 2 test; poly 5 good -> floor(1.25 + .5) = 1 test.
    assert (summary["mono"]["counts"]["train/good"], summary["mono"]["counts"]["test/good"]) == (6, 2)
    assert (summary["poly"]["counts"]["train/good"], summary["poly"]["counts"]["test/good"]) == (4, 1)
    assert summary["poly"]["counts"]["test/defect_p67"] == 0
    # The manifest lists every image once with its split and probability.
    manifest = (out / "poly" / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "file,split,probability"
    assert len(manifest) - 1 == sum(r[2] == "poly" for r in rows)
    assert {line.split(",")[0] for line in manifest[1:]} == files_under(out / "poly") - {
        "manifest.csv", "README.txt", "LICENSE.txt"}
    assert "test/defect_p33/cell0021.png,test,0.3333" in manifest


def test_split_fraction_rule_and_independence_of_row_order(tmp_path):
    spec = [("mono", 0)] * 400 + [("mono", 3)] * 3 + [("poly", 0)] * 30 + [("poly", 1)]
    rows = make_fake(tmp_path / "src", spec, shared_image=True)
    labels = tmp_path / "src" / "labels.csv"
    good_mono = sorted(n for n, lv, t in rows if lv == 0 and t == "mono")
    for fraction, expected_n in ((0.25, 100), (0.1, 40), (0.333, 133)):
        summary = elpv.convert(labels, tmp_path / "unused", test_good_fraction=fraction, dry_run=True)
        assert summary["mono"]["counts"]["test/good"] == expected_n
        assert summary["mono"]["counts"]["train/good"] == 400 - expected_n
        assert summary["mono"]["status"] == "planned"
    # Rounding and clamping on the 30 good poly cells: 7.5 -> 8; 0.3 -> 0 -> at least 1; 29.7 -> 30 -> at most 29.
    for fraction, expected_n in ((0.25, 8), (0.01, 1), (0.99, 29)):
        summary = elpv.convert(labels, tmp_path / "unused", types=["poly"], test_good_fraction=fraction, dry_run=True)
        assert (summary["poly"]["counts"]["test/good"], summary["poly"]["counts"]["train/good"]) == (
            expected_n, 30 - expected_n)
    assert not (tmp_path / "unused").exists()  # dry run writes nothing

    summary = elpv.convert(labels, tmp_path / "a", test_good_fraction=0.25, seed=0)
    test_a = listing(tmp_path / "a" / "mono", "test/good")
    assert test_a == expected_test_good(good_mono, 0.25, 0)
    # Same labels listed in reverse order (the images stay where they are): identical split.
    lines = labels.read_text().splitlines()
    (tmp_path / "src" / "reversed.csv").write_text("\n".join(reversed(lines)) + "\n")
    elpv.convert(tmp_path / "src" / "reversed.csv", tmp_path / "b", test_good_fraction=0.25, seed=0)
    assert listing(tmp_path / "b" / "mono", "test/good") == test_a
    # Another seed: another split of the same size.
    elpv.convert(labels, tmp_path / "c", test_good_fraction=0.25, seed=1)
    test_c = listing(tmp_path / "c" / "mono", "test/good")
    assert len(test_c) == 100 and test_c != test_a and test_c == expected_test_good(good_mono, 0.25, 1)


def test_two_conversions_are_identical(tmp_path):
    make_fake(tmp_path / "src", SMALL)
    labels = tmp_path / "src" / "labels.csv"
    elpv.convert(labels, tmp_path / "a", seed=3)
    elpv.convert(labels, tmp_path / "b", seed=3)
    files_a, files_b = files_under(tmp_path / "a"), files_under(tmp_path / "b")
    assert files_a == files_b and len(files_a) == len(SMALL) + 2 * 3
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_rerun_is_a_quick_noop(tmp_path):
    make_fake(tmp_path / "src", SMALL)
    labels = tmp_path / "src" / "labels.csv"
    first = elpv.convert(labels, tmp_path / "out")
    image = next((tmp_path / "out" / "mono" / "train" / "good").iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in (image, tmp_path / "out" / "mono" / "manifest.csv")}
    (tmp_path / "out" / ".mono.partial").mkdir()  # debris of an interrupted run must not matter
    second = elpv.convert(labels, tmp_path / "out")
    assert [second[t]["status"] for t in ("mono", "poly")] == ["unchanged", "unchanged"]
    assert {t: second[t]["counts"] for t in second} == {t: first[t]["counts"] for t in first}
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing was rewritten


def test_mismatch_is_an_error_unless_overwrite(tmp_path):
    make_fake(tmp_path / "src", SMALL)
    labels = tmp_path / "src" / "labels.csv"
    out = tmp_path / "out"
    elpv.convert(labels, out, types=["mono"], seed=0)
    before = (out / "mono" / "manifest.csv").read_text()
    good = sorted(listing(out / "mono", "train/good") | listing(out / "mono", "test/good"))
    seed = next(s for s in range(1, 50) if expected_test_good(good, 0.25, s) != expected_test_good(good, 0.25, 0))

    with pytest.raises(DatasetError, match="overwrite"):
        elpv.convert(labels, out, types=["mono"], seed=seed)
    assert (out / "mono" / "manifest.csv").read_text() == before  # untouched

    summary = elpv.convert(labels, out, types=["mono"], seed=seed, overwrite=True)
    assert summary["mono"]["status"] == "written"
    assert listing(out / "mono", "test/good") == expected_test_good(good, 0.25, seed)
    assert len(files_under(out / "mono" / "train")) + len(files_under(out / "mono" / "test")) == 14  # no stale
    assert elpv.convert(labels, out, types=["mono"], seed=seed)["mono"]["status"] == "unchanged"

    # Changed labels (a good cell relabelled defective) also count as a mismatch.
    text = labels.read_text().replace("images/cell0001.png  0.0", "images/cell0001.png  1.0")
    labels.write_text(text)
    with pytest.raises(DatasetError, match="manifest.csv differs"):
        elpv.convert(labels, out, types=["mono"], seed=seed)

    # A damaged category or a foreign folder is not silently accepted either.
    make_fake(tmp_path / "src2", SMALL)
    labels2 = tmp_path / "src2" / "labels.csv"
    elpv.convert(labels2, tmp_path / "out2", types=["mono"])
    next((tmp_path / "out2" / "mono" / "train" / "good").iterdir()).unlink()
    with pytest.raises(DatasetError, match="missing"):
        elpv.convert(labels2, tmp_path / "out2", types=["mono"])
    (tmp_path / "out3" / "mono" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no manifest.csv"):
        elpv.convert(labels2, tmp_path / "out3", types=["mono"])


def test_bad_inputs_are_one_line_user_errors(tmp_path):
    make_fake(tmp_path / "src", SMALL)
    labels = tmp_path / "src" / "labels.csv"
    lines = labels.read_text().splitlines()

    bad = tmp_path / "src" / "bad.csv"
    bad.write_text("\n".join(lines[:2] + ["images/cell0003.png 1.0"] + lines[3:]) + "\n")
    with pytest.raises(DatasetError, match="line 3"):
        elpv_labels.read_labels(bad)
    bad.write_text("\n".join(lines[:2] + ["images/cell0003.png 0.5 mono"] + lines[3:]) + "\n")
    with pytest.raises(DatasetError, match="not one of 0, 1/3, 2/3, 1"):
        elpv.convert(bad, tmp_path / "out")

    (tmp_path / "src" / "images" / "cell0010.png").unlink()
    with pytest.raises(DatasetError, match="cell0010.png is missing"):
        elpv.convert(labels, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before writing anything

    with pytest.raises(ConfigError, match="available: mono,poly"):
        elpv.convert(labels, tmp_path / "out", types=["mono", "cdte"])
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="test_good_fraction"):
            elpv.convert(labels, tmp_path / "out", test_good_fraction=fraction)
    with pytest.raises(DatasetError, match="labels file not found"):
        elpv.convert(tmp_path / "nope.csv", tmp_path / "out")


def test_script_prints_table_and_exits_2_on_user_error(tmp_path):
    make_fake(tmp_path / "src", SMALL)
    cmd = [sys.executable, "-m", "scripts.prepare_elpv", f"--source={tmp_path / 'src' / 'labels.csv'}",
           f"--output_dir={tmp_path / 'out'}"]
    env = dict(os.environ, PYTHONPATH="")  # as documented: run as a module from the repository folder
    done = subprocess.run(cmd + ["--types=poly"], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    poly_row = next(line for line in done.stdout.splitlines() if line.startswith("poly"))
    assert poly_row.split()[1:7] == ["4", "1", "1", "0", "3", "written"]
    assert not (tmp_path / "out" / "mono").exists() and (tmp_path / "out" / "poly" / "manifest.csv").is_file()
    failed = subprocess.run(cmd + ["--types=poly", "--seed=9"], capture_output=True, text=True, env=env, timeout=120,
                            cwd=REPO)
    assert failed.returncode == 2
    assert failed.stderr.strip().startswith("error:") and len(failed.stderr.strip().splitlines()) == 1


def test_real_package_counts(tmp_path):
    labels = elpv_labels.package_labels_path()
    assert labels.is_file()
    # Independent parse of the real labels, the way the package's own loader does it.
    data = np.genfromtxt(labels, dtype=["|S19", "<f8", "|S4"], names=["path", "probability", "type"])
    paths = np.char.decode(data["path"])
    types = np.char.decode(data["type"])
    levels = np.rint(data["probability"] * 3).astype(int)
    assert len(paths) == 2624 and set(types) == {"mono", "poly"}

    summary = elpv.convert(labels, tmp_path / "elpv")
    for cell_type in ("mono", "poly"):
        mask = types == cell_type
        per_level = Counter(levels[mask].tolist())
        good = sorted(Path(p).name for p in paths[mask & (levels == 0)])
        n_test = len(expected_test_good(good, 0.25, 0))
        expected = {"train/good": per_level[0] - n_test, "test/good": n_test,
                    "test/defect_p33": per_level[1], "test/defect_p67": per_level[2],
                    "test/defect_p100": per_level[3]}
        assert summary[cell_type]["counts"] == expected
        category = tmp_path / "elpv" / cell_type
        for folder, n in expected.items():
            assert len(list((category / folder).iterdir())) == n, folder
        assert listing(category, "test/good") == expected_test_good(good, 0.25, 0)
    assert sum(sum(s["counts"].values()) for s in summary.values()) == 2624
