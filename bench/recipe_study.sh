#!/usr/bin/env bash
# The recipe study of docs/RESULTS.md ("Time to quality"): paper and fast recipes, several seeds, on the
# bottle (MVTec AD), the magnetic tiles and the ELPV demo data, each run monitored (test AUROC and reconstruction specificity of the EMA
# weights) and evaluated at the end with the fair protocol. Runs one training at a time; a run that exists is
# resumed or skipped (train.py's own resume), so the script can be started again after an interruption.
#
#   bench/recipe_study.sh [OUT_DIR] [SEEDS] [SETS] [RECIPES]
#   bench/recipe_study.sh runs/ttq "1 2 3" "bottle elpv magnetic_tile" "paper fast"
#   python -m bench.time_to_quality --run_glob='runs/ttq/*' --out=runs/ttq    # table and figure
#
# Data: MVTec AD's bottle under $MVTEC_DIR (default data/mvtec-ad), the magnetic tile set in MVTec layout under
# $TILES_DIR (default data/magnetic-tile), the ELPV cells under data/elpv:
# python -m scripts.prepare_elpv --output_dir=data/elpv --types=mono (make demo does it too).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-runs/ttq}
SEEDS=${2:-1 2 3}
SETS=${3:-elpv magnetic_tile}
RECIPES=${4:-paper fast}
STEPS=${STEPS:-3000}
MVTEC_DIR=${MVTEC_DIR:-data/mvtec-ad}
TILES_DIR=${TILES_DIR:-data/magnetic-tile}

flags_for() {
  case "$1" in
    magnetic_tile) echo "--category=magnetic_tile --data_dir=$TILES_DIR --type=texture \
--image_size=256 --patch_size=64 --monitor_every=1000" ;;
    bottle) echo "--category=bottle --data_dir=$MVTEC_DIR --monitor_every=500" ;;
    elpv) echo "--category=mono --data_dir=data/elpv --image_size=64 --monitor_every=500" ;;
    *) echo "unknown set $1 (bottle, elpv, magnetic_tile)" >&2; exit 2 ;;
  esac
}

mkdir -p "$OUT"
for seed in $SEEDS; do
  for set in $SETS; do
    for recipe in $RECIPES; do
      run="$OUT/$set-$recipe-s$seed"
      echo "== $run ($(date -u +%H:%M:%S))"
      # shellcheck disable=SC2046
      $PY train.py $(flags_for "$set") --recipe="$recipe" --seed="$seed" --steps="$STEPS" --threshold_holdout=0 \
        --preview_every=0 --checkpoint_every=500 --run_dir="$run" > "$run.log" 2>&1
      $PY evaluate.py --run="$run" >> "$run.log" 2>&1
      tail -n 3 "$run.log"
    done
  done
done
