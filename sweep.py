"""Train and evaluate many categories: python sweep.py [--data_dir=data/mvtec-ad] [--categories=bottle,carpet]
                                                     [--steps=N] [-- <more train.py flags>]

Trains each category with train.py into <sweep_dir>/<category>-alpha<alpha> (default runs/sweep), one after
another, or N at a time with one process per GPU (CUDA_VISIBLE_DEVICES) when GPUs exist; then runs
`evaluate.py --run <sweep_dir>`, which writes the paper-style table (results.csv, results.md) beside the runs.
Running the same command again skips finished runs (last checkpoint step >= --steps) and resumes interrupted
ones from their last checkpoint. Flags after `--` go to every train.py; --object_flags / --texture_flags go to
the runs of that category type only. See docs/SCALING.md.
"""
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import cli  # noqa: F401  (TF log level; sweep.py itself never imports TensorFlow)
from absl import flags

from config import TrainConfig
from data.categories import ALL_CATEGORIES, category_spec
import run_folder

REPO = Path(__file__).resolve().parent
DEFAULTS = TrainConfig()
SWEEP_OWNED = ("category", "data_dir", "run_dir", "steps", "alpha")  # set by the sweep for each run

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", DEFAULTS.data_dir, "Dataset root in MVTec AD layout.")
flags.DEFINE_list("categories", [], "Categories to train, in order (default: every official MVTec AD category "
                  "found as a folder under --data_dir).")
flags.DEFINE_string("sweep_dir", "runs/sweep", "Folder of the runs (<category>-alpha<alpha>) and the table.")
flags.DEFINE_integer("steps", DEFAULTS.steps, "Steps of each run (train.py --steps).")
flags.DEFINE_float("alpha", DEFAULTS.alpha, "Consistency weight (train.py --alpha); part of the run names.")
flags.DEFINE_string("gpus", "auto", "GPUs to use: auto (CUDA_VISIBLE_DEVICES, else nvidia-smi -L, else "
                    "TensorFlow's list), none (CPU), or ids such as 0,1,2,3.")
flags.DEFINE_integer("gpus_per_run", 1, "GPUs given to each train.py; >1 adds --strategy=mirrored.")
flags.DEFINE_integer("parallel", 0, "Runs at a time (0: one per --gpus_per_run GPUs, 1 without GPU).")
flags.DEFINE_string("object_flags", "", "Extra train.py flags for object categories, e.g. '--image_size=64'.")
flags.DEFINE_string("texture_flags", "", "Extra train.py flags for texture categories.")
flags.DEFINE_boolean("evaluate", True, "Run evaluate.py --run <sweep_dir> at the end.")
flags.DEFINE_boolean("dry_run", False, "Print the plan and the commands, run nothing.")


@dataclass
class Task:
    category: str
    run_dir: str
    action: str            # "train" (new run), "resume" (interrupted run), "skip" (finished)
    last_step: Optional[int] = None


def run_name(category, alpha):
    return f"{category}-alpha{alpha:g}"


def official_categories(data_dir):
    """The 15 official MVTec AD names that exist as folders under data_dir, in the paper's order."""
    return [name for name in ALL_CATEGORIES if os.path.isdir(os.path.join(data_dir, name))]


def last_checkpoint_step(run_dir):
    """Step of the newest checkpoint file in <run_dir>/checkpoints (None: none), read without TensorFlow."""
    steps = run_folder.checkpoint_steps(run_folder.checkpoint_folder(run_dir))
    return steps[0] if steps else None


def plan(categories, sweep_dir, steps, alpha):
    """What to do per category: skip finished runs, resume interrupted ones, start the others."""
    tasks = []
    for category in categories:
        run_dir = os.path.join(sweep_dir, run_name(category, alpha))
        if not run_folder.is_run_folder(run_dir):
            tasks.append(Task(category, run_dir, "train"))
            continue
        last = last_checkpoint_step(run_dir)
        tasks.append(Task(category, run_dir, "skip" if last is not None and last >= steps else "resume", last))
    return tasks


def train_command(task, data_dir, steps, alpha, extra, type_flags):
    """The train.py command line of a task: the sweep's own flags, then the per-type and the passed-through
    ones."""
    spec_type = category_spec(task.category).type
    return ([sys.executable, str(REPO / "train.py"), f"--category={task.category}", f"--data_dir={data_dir}",
             f"--run_dir={task.run_dir}", f"--steps={steps}", f"--alpha={alpha:g}"]
            + shlex.split(type_flags.get(spec_type, "")) + list(extra))


def parse_type_flags(flag, value):
    """The train.py flags of --object_flags / --texture_flags, split as a shell does; an unbalanced quote is a
    ConfigError naming the flag (checked before anything runs)."""
    try:
        return shlex.split(value)
    except ValueError as err:  # "No closing quotation", "No escaped character"
        raise_config_error(f"--{flag}={value}: {str(err).lower()}; balance the quotes, e.g. "
                           f"--{flag}=\"--image_size=64 --channels=32\"")


def check_extra_flags(extra):
    for arg in extra:
        name = arg.lstrip("-").split("=", 1)[0]
        if name in SWEEP_OWNED:
            raise_config_error(f"{arg}: the sweep sets --{name} itself (use sweep.py --{name} where it exists)")
        if not arg.startswith("--"):
            raise_config_error(f"unexpected argument {arg!r}; put train.py flags after --, e.g. -- --channels=32")


def raise_config_error(message):
    from errors import ConfigError
    raise ConfigError(message)


def detect_gpus(spec="auto"):
    """GPU ids to hand out through CUDA_VISIBLE_DEVICES ([] for CPU only)."""
    if spec == "none" or spec == "":
        return []
    if spec != "auto":
        return [g.strip() for g in spec.split(",") if g.strip()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]
    except (OSError, subprocess.SubprocessError):
        pass
    probe = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'; import tensorflow as tf; "
             "print(len(tf.config.list_physical_devices('GPU')))")
    try:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
        return [str(i) for i in range(int(out.stdout.strip().splitlines()[-1]))]
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return []


def device_slots(gpus, gpus_per_run, parallel):
    """CUDA_VISIBLE_DEVICES values of the concurrent slots (None: leave the environment as it is, CPU runs)."""
    if not gpus:
        return [None] * max(1, parallel or 1)
    groups = [",".join(gpus[i:i + gpus_per_run]) for i in range(0, len(gpus) - gpus_per_run + 1, gpus_per_run)]
    if not groups:
        raise_config_error(f"--gpus_per_run={gpus_per_run} but only {len(gpus)} GPUs ({','.join(gpus)})")
    return groups[:parallel] if parallel else groups


def run_tasks(tasks, commands, slots, log_dir, log=print):
    """Run the commands, len(slots) at a time; returns {category: return code}. With one slot the output goes
    to this terminal, otherwise to <log_dir>/<category>.log."""
    pending = [t for t in tasks if t.action != "skip"]
    running, codes = {}, {}
    try:
        _schedule(pending, commands, slots, log_dir, log, running, codes)
    except KeyboardInterrupt:  # Ctrl-C reached the trainings too: each writes a checkpoint and exits
        log("interrupted: waiting for the running trainings to write their checkpoints")
        for process in running:
            process.wait()
        raise
    return codes


def _schedule(pending, commands, slots, log_dir, log, running, codes):
    free = list(slots)
    while pending or running:
        while pending and free:
            task, slot = pending.pop(0), free.pop(0)
            env = dict(os.environ)
            if slot is not None:
                env["CUDA_VISIBLE_DEVICES"] = slot
            where = f" on GPU {slot}" if slot is not None else ""
            if len(slots) > 1:
                os.makedirs(log_dir, exist_ok=True)
                path = os.path.join(log_dir, f"{task.category}.log")
                output = open(path, "a")
                log(f"[{task.category}] {task.action}{where}; log: {path}")
            else:
                output = None
                log(f"[{task.category}] {task.action}{where}")
            process = subprocess.Popen(commands[task.category], cwd=REPO, env=env, stdout=output,
                                       stderr=subprocess.STDOUT if output else None)
            running[process] = (task, slot, output)
        time.sleep(0.2)
        for process in [p for p in running if p.poll() is not None]:
            task, slot, output = running.pop(process)
            if output is not None:
                output.close()
            codes[task.category] = process.returncode  # anything but 0 is not done (130/143: interrupted)
            log(f"[{task.category}] " + outcome(process.returncode))
            free.append(slot)


def outcome(code):
    """How a train.py exit code is reported: only 0 is done."""
    if code == 0:
        return "done"
    if code in (130, 143, -2, -15):
        return f"interrupted (exit {code}): not done; run the same command again to resume"
    return f"FAILED (exit {code})"


def main(argv):
    extra = argv[1:]
    check_extra_flags(extra)
    for flag in ("object_flags", "texture_flags"):
        parse_type_flags(flag, FLAGS[flag].value)
    if not os.path.isdir(FLAGS.data_dir):
        raise_config_error(f"--data_dir={FLAGS.data_dir} is not a folder")
    categories = FLAGS.categories or official_categories(FLAGS.data_dir)
    if not categories:
        raise_config_error(f"no MVTec AD category folder under --data_dir={FLAGS.data_dir} (give --categories)")
    missing = [c for c in categories if not os.path.isdir(os.path.join(FLAGS.data_dir, c))]
    if missing:
        raise_config_error(f"--categories: {', '.join(missing)} not found under {FLAGS.data_dir}")
    if FLAGS.steps <= 0:
        raise_config_error(f"--steps must be positive, got {FLAGS.steps}")
    if FLAGS.gpus_per_run < 1:
        raise_config_error("--gpus_per_run must be >= 1")

    tasks = plan(categories, FLAGS.sweep_dir, FLAGS.steps, FLAGS.alpha)
    gpus = detect_gpus(FLAGS.gpus)
    if gpus and FLAGS.gpus_per_run > 1 and not any(a.startswith("--strategy") for a in extra):
        extra = extra + ["--strategy=mirrored"]
    slots = device_slots(gpus, FLAGS.gpus_per_run, FLAGS.parallel)
    type_flags = {"object": FLAGS.object_flags, "texture": FLAGS.texture_flags}
    commands = {t.category: train_command(t, FLAGS.data_dir, FLAGS.steps, FLAGS.alpha, extra, type_flags)
                for t in tasks}
    device = f"GPUs {','.join(gpus)}" if gpus else "CPU"
    print(f"sweep of {len(tasks)} categories into {FLAGS.sweep_dir} on {device}, {len(slots)} at a time:")
    for task in tasks:
        detail = "" if task.last_step is None else f" (last checkpoint at step {task.last_step} of {FLAGS.steps})"
        print(f"  {task.category:12s} {task.action}{detail}")
        if FLAGS.dry_run and task.action != "skip":
            print("    " + shlex.join(commands[task.category]))
    if FLAGS.dry_run:
        return
    run_folder.acquire_lock(FLAGS.sweep_dir, "sweep.py")  # one sweep per sweep folder (ConfigError naming the pid)
    try:
        run_sweep(tasks, commands, slots)
    finally:
        run_folder.release_lock(FLAGS.sweep_dir)


def run_sweep(tasks, commands, slots):
    """Train (len(slots) at a time), then evaluate the sweep folder; exit 130 on Ctrl-C, 1 if a run is not done."""
    try:
        codes = run_tasks(tasks, commands, slots, os.path.join(FLAGS.sweep_dir, "logs"))
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    failed = sorted(c for c, code in codes.items() if code != 0)
    if FLAGS.evaluate and len(failed) < len(tasks):
        result = subprocess.run([sys.executable, str(REPO / "evaluate.py"), f"--run={FLAGS.sweep_dir}"], cwd=REPO)
        if result.returncode != 0:
            failed.append("evaluate.py")
    if failed:
        print(f"error: not done: {', '.join(failed)} (run the same command again to resume)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli.run_main(main, load_tensorflow=False)
