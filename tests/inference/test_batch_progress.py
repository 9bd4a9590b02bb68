"""inference/batch_progress.py: predict.py's progress (a tqdm bar on a terminal, plain lines per batch otherwise)."""
import io
import os

from inference.batch_progress import BatchProgress
from tests.helpers.terminal import FakeClock, FakeTerminal, drawn_lines, set_columns


def test_plain_line_per_batch_off_a_terminal():
    stream, clock = io.StringIO(), FakeClock(100.0)
    with BatchProgress(100, stream, shown=True, clock=clock) as progress:
        clock.now += 2.0
        progress.update(32, 1)
        progress.message("skipped: a.png: not an image")
        clock.now += 2.0
        progress.update(64, 3)
    assert stream.getvalue().splitlines() == ["32/100 images (16.0 img/s), 1 anomalous so far",
                                              "skipped: a.png: not an image",
                                              "64/100 images (16.0 img/s), 3 anomalous so far"]


def test_one_batch_prints_no_progress_but_still_the_messages():
    stream = FakeTerminal()
    with BatchProgress(10, stream, shown=False) as progress:
        progress.update(10, 2)
        progress.message("skipped: b.png: empty file")
    assert stream.getvalue() == "skipped: b.png: empty file\n"


def test_bar_on_a_terminal_stays_inside_its_width_and_follows_it():
    master, slave = os.openpty()
    try:
        set_columns(slave, 60)
        stream = FakeTerminal(slave)
        with BatchProgress(100, stream, shown=True, redraw_seconds=0) as progress:
            progress.update(32, 1)
            progress.message("skipped: c.png: truncated")
            progress.update(64, 3)
            set_columns(slave, 90)  # the window was widened
            progress.update(96, 4)
    finally:
        os.close(master)
        os.close(slave)
    text = stream.getvalue()
    lines = [line for line in drawn_lines(text) if line.strip()]
    bars = [line for line in lines if line.startswith("scoring:")]
    assert [line for line in lines if line not in bars] == ["skipped: c.png: truncated"]
    assert [len(line) for line in bars if "96/100" not in line] == [59] * (len(bars) - 2)  # one column short
    assert [len(line) for line in bars if "96/100" in line] == [89, 89]  # the redraw and the final line on exit
    assert " 64%|" in bars[-3] and "64/100" in bars[-3]
    assert " 96%|" in bars[-1] and bars[-1].endswith("img/s, 4 anomalous]")  # tqdm's fields, then the count
    before, after = text.split("skipped: c.png: truncated\n")
    assert "32/100" in drawn_lines(before)[-2] and drawn_lines(before)[-1].strip() == ""  # bar blanked first
    assert drawn_lines(after)[0].startswith("scoring:") and "32/100" in drawn_lines(after)[0]  # redrawn below
    assert text.endswith("\n") and "images (" not in text  # the bar ends its line; no plain lines on a terminal
