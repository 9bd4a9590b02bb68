"""training/progress.py (a tqdm bar on a terminal, plain lines in a file) and training/interrupt.py (Ctrl-C)."""
import io
import os
import signal
import sys
import threading
import time

import pytest

from tests.helpers.terminal import FakeClock, FakeTerminal, drawn_lines
from training.progress import Progress, fit_right

LONG_LOSSES = {"critic_loss": -1234.56789, "gradient_penalty": 0.000123456, "adversarial_loss": 98765.4321,
               "image_reconstruction": 0.123456789, "latent_reconstruction": 1.5e-7,
               "a_very_long_loss_name_that_alone_is_wider_than_forty_columns": 3.0}


@pytest.mark.parametrize("width", [10, 40, 80, 132])
def test_live_line_never_reaches_the_terminal_width(width):
    stream, clock = FakeTerminal(), FakeClock()
    progress = Progress(123456, stream=stream, width=width, clock=clock, warmup_steps=2)
    for step in range(1, 30):
        clock.now += 0.7
        progress.update(step, 1234.5, LONG_LOSSES, force=step % 7 == 0)
    progress.close()
    lines = drawn_lines(stream.getvalue())
    assert len(lines) == 30  # one redraw per update (0.7 s apart > the 0.5 s redraw limit), one more on close
    assert all(len(line) == width - 1 for line in lines)  # the bar fills the line to one short of the width
    if width >= 40:
        assert all("%|" in line for line in lines)  # the bar stays, the fields right of it make room
    assert all(line.startswith("step "[:width - 1]) for line in lines)
    assert stream.getvalue().endswith("\n")


def test_least_important_fields_are_dropped_first():
    right = ["ETA 1:00", "50 img/s", "critic_loss 1", "gradient_penalty 2"]  # the fields right of the bar
    assert fit_right(right, 60) == " ETA 1:00 | 50 img/s | critic_loss 1 | gradient_penalty 2"
    assert fit_right(right, 25) == " ETA 1:00 | 50 img/s"  # the losses go first, the last one first
    assert fit_right(right, 10) == " ETA 1:00"  # then the rate
    assert fit_right(right, 5) == ""  # then the ETA: the bar and "step n/total" are all that is left


def test_live_width_follows_the_terminal(monkeypatch):
    stream, clock = FakeTerminal(), FakeClock()
    progress = Progress(100, stream=stream, clock=clock)
    monkeypatch.setenv("COLUMNS", "50")
    progress.update(1, 10.0, LONG_LOSSES, force=True)
    monkeypatch.setenv("COLUMNS", "70")  # the window was resized
    progress.update(2, 10.0, LONG_LOSSES, force=True)
    assert [len(line) for line in drawn_lines(stream.getvalue())] == [49, 69]


def test_not_a_terminal_gives_one_plain_line_per_interval():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(40, stream=stream, clock=clock, warmup_steps=2)
    for step in range(1, 41):
        clock.now += 1.0
        progress.update(step, 16.0, LONG_LOSSES, force=step % 10 == 0)
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert [line.split(" | ")[0] for line in lines] == ["step 10/40", "step 20/40", "step 30/40", "step 40/40"]
    assert all(line.count(" | ") == 2 + len(LONG_LOSSES) for line in lines)  # a log file keeps every field


def test_eta_ignores_the_slow_first_steps():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(100, stream=stream, clock=clock, warmup_steps=5)
    lines = {}
    for step in range(1, 61):
        clock.now += 60.0 if step <= 5 else 1.0  # tracing: a minute per step, then one second per step
        progress.update(step, 4.0, {}, force=True)
        lines[step] = stream.getvalue().splitlines()[-1]
    assert "ETA --" in lines[1] and "ETA --" in lines[5]  # no steady-state rate yet
    assert "ETA 1:34" in lines[6]  # 94 steps left at 1 s each
    assert "ETA 0:40" in lines[60]  # with the first minutes counted it would say several minutes


def test_eta_after_a_resume_waits_for_its_own_warm_up():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(1000, start_step=500, stream=stream, clock=clock, warmup_steps=3)
    for step in range(501, 506):
        clock.now += 2.0
        progress.update(step, 4.0, {}, force=True)
    lines = stream.getvalue().splitlines()
    assert ["ETA --" in line for line in lines] == [True, True, True, False, False]
    assert "ETA 16:30" in lines[-1]  # 495 steps at 2 s


def test_message_ends_the_live_line_first():
    stream, clock = FakeTerminal(), FakeClock()
    progress = Progress(10, stream=stream, width=40, clock=clock)
    progress.update(3, 1.0, {}, force=True)
    progress.message("SIGINT: saving checkpoint...")
    progress.close()
    text = stream.getvalue()
    before, after = text.split("SIGINT: saving checkpoint...\n")
    assert drawn_lines(before)[0].startswith("step 3/10  30%|")
    assert before.endswith("\r") and drawn_lines(before)[-1].strip() == ""  # the bar blanked, cursor back
    assert all(line.startswith("step 3/10  30%|") for line in drawn_lines(after))  # redrawn below the message
    assert text.count("\n") == 2 and text.endswith("\n")  # the message's line and the bar's own, nothing more


def test_the_bar_is_filled_in_proportion_and_tqdm_rate_is_not_shown():
    stream, clock = FakeTerminal(), FakeClock()
    progress = Progress(10, stream=stream, width=65, clock=clock, warmup_steps=1)
    for step in (1, 4):
        clock.now += 3.0
        progress.update(step, 2.0, {"critic_loss": 0.5}, force=True)
    line = drawn_lines(stream.getvalue())[-1]
    assert line.startswith("step 4/10  40%|") and len(line) == 64
    bar = line.split("|")[1]
    assert len(bar) >= 10 and bar.count("#") == int(0.4 * len(bar))  # ASCII bar off a real terminal encoding
    assert line.split("|", 2)[2] == " ETA 0:06 | 2 img/s | critic_loss 0.5"  # 6 steps at 1 s; no tqdm rate
    assert "it/s" not in stream.getvalue() and "<" not in stream.getvalue()


def test_ctrl_c_is_announced_while_tensorflow_holds_the_main_thread():
    """The Python-level handler cannot run while the main thread is inside a TensorFlow op (here a dequeue that
    blocks until a helper thread feeds the queue); the line must come at once all the same, and only once."""
    import tensorflow as tf
    from training.interrupt import StopRequest

    queue = tf.queue.FIFOQueue(1, tf.int32)
    said, seen_while_blocked = [], threading.Event()

    main = threading.main_thread().ident

    def helper():
        deadline = time.monotonic() + 60
        while (sys._current_frames()[main].f_code.co_name != "queue_dequeue_v2"  # until the main thread is in it
               and time.monotonic() < deadline):
            time.sleep(0.01)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 10
        while not said and time.monotonic() < deadline:
            time.sleep(0.01)
        if said:
            seen_while_blocked.set()
        queue.enqueue(1)  # lets the main thread go on

    previous = signal.getsignal(signal.SIGINT)
    with StopRequest(announce=said.append) as stop:
        stop.step = 7
        thread = threading.Thread(target=helper)
        thread.start()
        assert int(queue.dequeue()) == 1  # blocks in C++ until the helper enqueues
        thread.join()
        time.sleep(0.05)  # the Python-level handler runs now
        assert seen_while_blocked.is_set()
        assert stop.requested and stop.signal_name == "SIGINT"
    assert said == ["SIGINT: saving checkpoint... (interrupted at step 7)"]
    assert signal.getsignal(signal.SIGINT) is previous  # restored on exit
    assert signal.set_wakeup_fd(-1) == -1  # and the wakeup descriptor released
