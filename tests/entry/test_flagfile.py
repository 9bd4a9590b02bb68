"""The example flag file in docs/examples is a valid train.py --flagfile, and later flags override it."""
import json
import os
import subprocess
import sys

from tests.helpers import REPO

EXAMPLE = os.path.join(REPO, "docs", "examples", "bottle-fast.flags")

PARSE = (
    "import json, sys\n"
    "sys.argv = ['train.py'] + sys.argv[1:]\n"
    "import train\n"
    "train.FLAGS(sys.argv)\n"
    "print(json.dumps({name: train.FLAGS[name].value for name in "
    "['category', 'data_dir', 'recipe', 'steps', 'monitor_every', 'seed']}))\n"
)


def parse_train_flags(*args):
    out = subprocess.run([sys.executable, "-c", PARSE, *args], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_example_flagfile_sets_its_values():
    values = parse_train_flags(f"--flagfile={EXAMPLE}")
    assert values == {"category": "bottle", "data_dir": "data/mvtec-ad", "recipe": "fast", "steps": 3000,
                      "monitor_every": 500, "seed": 1}


def test_command_line_flag_after_flagfile_overrides_it():
    values = parse_train_flags(f"--flagfile={EXAMPLE}", "--seed=2", "--steps=40")
    assert values["seed"] == 2 and values["steps"] == 40 and values["recipe"] == "fast"
