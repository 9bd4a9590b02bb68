"""Image scores side by side: the paper's eq. 7 against the anomaly-map aggregations, per run and weights.

    python -m bench.image_scores --run runs/bottle-a [--run runs/bottle-b ...] [--topk_percent=1] [--csv out.csv]

For each run given, evaluates (evaluation/evaluate_run.py, in this process) the EMA and the last weights with
each image score (paper = eq. 7 at the run's lambda, map_max, map_topk; models/image_scores.py) and prints
one markdown table row per (run, weights, image score): image AUROC, maximum balanced accuracy, and the AUROC of
the mean-image baseline scored with the same aggregation. Each evaluation goes to its usual eval folder (eval,
eval_last, eval_map_max, eval_last_map_topk, ...); an existing evaluation with the same settings and checkpoint
is reused (--force re-evaluates). Metrics are chosen on the test set as evaluate.py's: a comparison of scores,
not a fair estimate of either.
"""
import argparse
import csv
import os
import sys

from config import WEIGHTS

COLUMNS = ("run", "category", "step", "weights", "image_score", "image_auroc", "balanced_accuracy",
           "baseline_auroc")


def compare(runs, data_dir=None, smoothing_sigma=4.0, topk_percent=1.0, batch_size=64, force=False,
            log=lambda *a: None):
    """One dict per (run, weights, image score) with the COLUMNS keys (image_score in words)."""
    from models import image_scores as IS
    from evaluation.evaluate_run import EvalSettings, evaluate_run, load_evaluation
    from inference.restore import restore_run

    rows = []
    for run in runs:
        restored = None  # restored once per run, for all the evaluations that are not reused
        for weights in WEIGHTS:
            for image_score in IS.IMAGE_SCORES:
                settings = EvalSettings(weights=weights, data_dir=data_dir, smoothing_sigma=smoothing_sigma,
                                        batch_size=batch_size, image_score=image_score,
                                        topk_percent=topk_percent).validate()
                summary = None if force else load_evaluation(run, settings)
                if summary is None:
                    restored = restored or restore_run(run)
                    summary = evaluate_run(run, settings, log=log, restored=restored)
                row = summary.at_default()
                rows.append({"run": run, "category": summary.category, "step": summary.step, "weights": weights,
                             "image_score": summary.image_score_text(), "image_auroc": row["image_auroc"],
                             "balanced_accuracy": row["balanced_accuracy"],
                             "baseline_auroc": (summary.diagnostics or {}).get("template_auroc")})
    return rows


def _fmt(value):
    return "-" if value is None else f"{value:.3f}"


def markdown(rows):
    lines = ["| run | category | step | weights | image score | image AUROC | max balanced accuracy | "
             "mean-image baseline AUROC |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {os.path.basename(os.path.normpath(r['run']))} | {r['category']} | {r['step']} | "
                     f"{r['weights']} | {r['image_score']} | {_fmt(r['image_auroc'])} | "
                     f"{_fmt(r['balanced_accuracy'])} | {_fmt(r['baseline_auroc'])} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="a run folder (repeat for several)")
    parser.add_argument("--data_dir", default=None, help="dataset root, when it moved since training")
    parser.add_argument("--smoothing_sigma", type=float, default=4.0, help="as evaluate.py's (256 px scale)")
    parser.add_argument("--topk_percent", type=float, default=1.0, help="map_topk: percent of the map averaged")
    parser.add_argument("--score_batch_size", type=int, default=64, help="model inputs per forward pass (evaluate.py's)")
    parser.add_argument("--force", action="store_true", help="re-evaluate instead of reusing evaluations")
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    import cli  # noqa: F401  (quiet TensorFlow logs)
    cli.import_tensorflow_quietly()
    from runtime_threads import configure_threads
    configure_threads()  # as evaluate.py
    from errors import UserError
    try:
        rows = compare(args.run, args.data_dir, args.smoothing_sigma, args.topk_percent, args.score_batch_size,
                       args.force, log=lambda message: print(message, file=sys.stderr))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
