"""The files of an eval folder: their names, the staging folder an evaluation is written into and swapped in at the
end (run_folder.swap_in: the previous result stays until a new one is complete), and its JSON files."""
import contextlib
import json
import os
import shutil

import run_folder

SETTINGS_FILE = "eval_settings.json"
DIAGNOSTICS_FILE = "diagnostics.json"
SCORES_FILE = "scores.csv"
METRICS_FILE = "metrics.csv"
PER_DEFECT_FILE = "per_defect.csv"
ROC_FILE = "roc.png"
HISTOGRAM_FILE = "histogram.png"
EXAMPLES_FILE = "examples.png"
OUTPUT_FILES = (SCORES_FILE, METRICS_FILE, PER_DEFECT_FILE, ROC_FILE, HISTOGRAM_FILE, EXAMPLES_FILE, SETTINGS_FILE,
                DIAGNOSTICS_FILE)


class Staging:
    """A fresh folder beside final_dir (run_folder.staging_folder) that becomes final_dir on publish()."""

    def __init__(self, final_dir):
        self.final_dir = final_dir
        self.dir = run_folder.staging_folder(final_dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def publish(self):
        """Swap the files written so far in as final_dir's (files an evaluation does not write are kept)."""
        run_folder.swap_in(self.dir, self.final_dir, OUTPUT_FILES)


@contextlib.contextmanager
def staging(final_dir):
    """with staging(eval_dir) as stage: write into stage.dir; published when the block ends, removed if it raises
    (after an early publish() there is nothing left to remove)."""
    stage = Staging(final_dir)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage.dir, ignore_errors=True)
        raise
    stage.publish()


def write_json(path, value):
    with open(path, "w") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")


def read_json(path):
    """The JSON content of path, or None when it is missing or unreadable."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None
