"""Small helpers shared by this project's training-step benchmark: peak RSS, JSON lines, the repo on sys.path."""
import json
import resource
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def add_repo_to_path():
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def peak_rss_mb():
    """Peak resident set size of this process in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(record):
    """Print one JSON object on one line and flush (the parent process reads it)."""
    print(json.dumps(record), flush=True)
