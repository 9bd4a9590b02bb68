"""Small helpers shared by this project's benchmarks: the repository folder, peak RSS, JSON lines."""
import json
import resource
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb():
    """Peak resident set size of this process in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(record):
    """Print one JSON object on one line and flush (the parent process reads it)."""
    print(json.dumps(record), flush=True)
