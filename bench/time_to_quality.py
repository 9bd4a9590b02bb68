"""Time to quality: monitored test AUROC and reconstruction specificity against CPU minutes, per recipe and seed.

    python -m bench.time_to_quality --run_glob='runs/ttq/*' --out=runs/ttq
    python -m bench.time_to_quality --run runs/a --run runs/b --out=runs/ttq

Reads run folders trained with --monitor_every and evaluated with evaluate.py (fair protocol), as
bench/recipe_study.sh makes them, and writes to --out: time_to_quality.png (the figure of docs/RESULTS.md),
time_to_quality.csv (one row per monitored step of each run) and time_to_quality.md (the table: median over the
seeds of each set and recipe, with the mean-image baseline). Nothing is trained or evaluated here.
"""
import argparse
import csv
import glob
import os


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="a run folder (repeat for several)")
    parser.add_argument("--run_glob", default=None, help="run folders matching this pattern (quote it)")
    parser.add_argument("--out", required=True, help="folder for the figure, the CSV and the table")
    args = parser.parse_args(argv)
    from evaluation import time_to_quality as T
    import run_folder

    runs = list(args.run) + sorted(glob.glob(args.run_glob) if args.run_glob else [])
    runs = [r for r in runs if run_folder.is_run_folder(r)]
    if not runs:
        parser.error("no run folder (with config.json) given by --run / --run_glob")
    curves = [T.read_run(r) for r in runs]
    os.makedirs(args.out, exist_ok=True)
    rows = T.curve_rows(curves)
    with run_folder.atomic_write(os.path.join(args.out, "time_to_quality.csv"), newline="") as handle:
        writer = csv.DictWriter(handle, ["run", "category", "recipe", "seed", "step", "cpu_minutes", "image_auroc",
                                         "specificity"])
        writer.writeheader()
        writer.writerows(rows)
    table = T.markdown(T.summarize(curves))
    with run_folder.atomic_write(os.path.join(args.out, "time_to_quality.md")) as handle:
        handle.write(table + "\n")
    drawn = T.time_to_quality_plot(os.path.join(args.out, "time_to_quality.png"), curves)
    print(table)
    missing = [c.run_dir for c in curves if not c.final]
    if missing:
        print(f"not evaluated yet (python evaluate.py --run <run>): {', '.join(missing)}")
    print(f"wrote {args.out}/time_to_quality.csv, .md" + (", .png" if drawn else " (no monitoring rows: no figure)"))


if __name__ == "__main__":
    main()
