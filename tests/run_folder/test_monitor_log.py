"""run_folder/monitor_log.py: metrics.csv rows per lambda, truncation on resume, best so far."""
import csv

from run_folder.monitor_log import MonitorLog, monitor_lambdas


def read(path):
    with open(path, newline="") as handle:
        return [(int(r["step"]), float(r["lambda"]), float(r["image_auroc"])) for r in csv.DictReader(handle)]


def test_monitor_lambdas_put_the_runs_lambda_first_without_duplicates():
    assert monitor_lambdas(0.1) == (0.1, 0.0, 1.0)
    assert monitor_lambdas(1.0) == (1.0, 0.0)
    assert monitor_lambdas(0) == (0.0, 1.0)


def test_append_best_and_resume_truncation(tmp_path):
    path = tmp_path / "metrics.csv"
    log = MonitorLog(str(path), resume_step=0)
    assert not path.exists() and log.best(0.1) is None
    log.append(1000, "ema", {0.1: 0.7, 0.0: 0.9})
    log.append(2000, "ema", {0.1: 0.8, 0.0: 0.5})
    log.append(3000, "ema", {0.1: 0.6, 0.0: 0.95})
    assert read(path) == [(1000, 0.1, 0.7), (1000, 0.0, 0.9), (2000, 0.1, 0.8), (2000, 0.0, 0.5),
                          (3000, 0.1, 0.6), (3000, 0.0, 0.95)]
    assert log.best(0.1) == 0.8 and log.best(0.0) == 0.95
    # resumed from the checkpoint of step 2000: the row of step 3000 is gone, the best is read back
    resumed = MonitorLog(str(path), resume_step=2000)
    assert read(path) == [(1000, 0.1, 0.7), (1000, 0.0, 0.9), (2000, 0.1, 0.8), (2000, 0.0, 0.5)]
    assert resumed.best(0.1) == 0.8 and resumed.best(0.0) == 0.9
    # a new run in a folder with an old metrics.csv starts empty
    MonitorLog(str(path), resume_step=0)
    assert read(path) == []
