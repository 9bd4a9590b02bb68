"""Plain helpers shared by the tests, imported as `tests.helpers...` (fixtures live in the conftest.py files).

    REPO             the repository folder (tests/helpers/__init__.py -> parents[2])
    config.py        tiny_config: a TrainConfig for tiny models
    images.py        tiny image trees in MVTec AD layout (make_category, pattern, save_image, save_mask)
    runs.py          the tiny trained runs shared through conftest.trained_run; read_csv, reference_scores
    faults.py        poison_critic_loss: a NaN critic loss injected at a given step
    numpy_ops.py     numpy reference operations (conv3x3_same)
    terminal.py      FakeTerminal, set_columns, FakeClock, drawn_lines: for the progress tests
"""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
