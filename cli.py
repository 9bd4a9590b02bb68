"""Shared edge code of the entry scripts: quiet TensorFlow logs, one-line errors with exit code 2."""
import errno
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def define_scoring_flags():
    """The flags evaluate.py, predict.py and export.py share: which weights of which checkpoint, and the image
    score (models/image_scores.py). Defined once so that their names, defaults and help agree; listed by the
    calling script's --help (absl's module_name of the main script is sys.argv[0])."""
    from absl import flags

    from config import CHECKPOINTS, WEIGHTS
    here = dict(module_name=sys.argv[0])
    flags.DEFINE_enum("weights", None, list(WEIGHTS), "E and G weights: the EMA copies or the last trained ones "
                      "(default: the run's protocol: ema for fair, last for authors).", **here)
    flags.DEFINE_enum("checkpoint", None, list(CHECKPOINTS), "Checkpoint: the latest, or the one kept by "
                      "--keep_best_on_test / --protocol=authors, selected on the test set (default: the run's "
                      "protocol: latest for fair, best_on_test for authors).", **here)
    flags.DEFINE_string("image_score", "paper", "Image score: paper (eq. 7, the L1 sums at the run's lambda; "
                        "default), map_max (max of the smoothed anomaly map) or map_topk (mean of its top "
                        "--topk_percent %); a threshold is computed with the same score. See docs/EVALUATION.md.", **here)
    flags.DEFINE_string("topk_percent", "1", "map_topk: percent of the map's pixels averaged (in (0, 100]).", **here)
    flags.DEFINE_float("smoothing_sigma", 4.0, "Gaussian sigma of the anomaly maps (map image scores and pixel "
                       "metrics), in pixels at 256 px scale (scaled to the map size: 2 px at 128, 8 px at 512); "
                       "0: no smoothing.", **here)


def import_tensorflow_quietly():
    """Import TensorFlow with the C++ start-up banner (oneDNN notice, absl pre-init warning) discarded: those
    lines ignore TF_CPP_MIN_LOG_LEVEL. Errors still surface as Python exceptions."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # a full disk or read-only storage: one line, exit 2


def printable(text):
    """text (a message, a path) with file-name bytes that are not UTF-8 (surrogate escapes) shown as U+FFFD, so
    that printing it never fails whatever the terminal's encoding."""
    from data.files import display_path
    return display_path(str(text))


def quiet_tensorflow_at_exit():
    """After a one-line error: TensorFlow would log more warnings as its objects are collected at exit (e.g. the
    values a failed checkpoint restore left unrestored); the error line is what the user needs."""
    import logging
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def run_main(main_fn, load_tensorflow=True, short_help=None):
    """Run main_fn(argv) under absl; a UserError prints one line and exits 2; an Interrupted training exits
    130 / 143.

    load_tensorflow=False leaves the import to main_fn (train.py checks its flags before paying for it).
    short_help: a function returning the text that --help, -h, -? and --helpshort print (exit 0) instead of
    absl's alphabetical list (--helpfull stays absl's)."""
    from absl import app
    from absl import logging

    from errors import Interrupted, TrainingDiverged, UserError

    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)  # checkpoint/saved-model INFO chatter
        try:
            if load_tensorflow:
                import_tensorflow_quietly()
            return main_fn(argv)
        except UserError as err:
            print(f"error: {printable(err)}", file=sys.stderr)
            quiet_tensorflow_at_exit()
            sys.exit(2)
        except OSError as err:
            if err.errno not in STORAGE_ERRNOS:
                raise
            where = f"{printable(err.filename)}: " if err.filename else ""
            print(f"error: {where}{err.strerror}: free disk space (or make the folder writable) and run the same "
                  "command again", file=sys.stderr)
            sys.exit(2)
        except Interrupted as err:  # the checkpoint is written: 130 (Ctrl-C) / 143 (SIGTERM), as shells expect
            print(str(err), file=sys.stderr)
            sys.exit(err.exit_code)
        except TrainingDiverged as err:
            print(f"error: training diverged: {err}", file=sys.stderr)
            sys.exit(1)

    app.run(wrapped, flags_parser=lambda argv: _parse_flags(argv, short_help))


_RENAMED = {}  # former flag name -> its new name (define_renamed_integer)


def define_renamed_integer(old, new, **args):
    """--old kept as the former name of the integer flag --new (defined before): its value goes to --new, with a
    one-line warning naming --new; giving both is an error. args: e.g. lower_bound, as --new's."""
    from absl import flags
    flags.DEFINE_integer(old, None, f"Deprecated: the former name of --{new}.", module_name=sys.argv[0], **args)
    _RENAMED[old] = new


def apply_renamed_flags(values, renamed=None):
    """After parsing: each former flag name given (define_renamed_integer) sets its new flag, with a warning."""
    from errors import ConfigError
    for old, new in (_RENAMED if renamed is None else renamed).items():
        if old in values and values[old].present:
            if values[new].present:
                raise ConfigError(f"--{old} is the former name of --{new}: give --{new} only")
            print(f"warning: --{old} is deprecated in {os.path.basename(sys.argv[0])}: use --{new}, the same "
                  "setting under its new name", file=sys.stderr)
            values[new].value = values[old].value


def _parse_flags(argv, short_help=None):
    """absl's flag parsing, but a malformed or unknown flag is one line and exit code 2 like every other bad flag
    (absl's own handler exits 1); with short_help, a help request prints short_help() and exits 0."""
    from absl import flags

    from errors import ConfigError
    if short_help is not None:
        from config_flags import is_help_request
        if is_help_request(argv):
            sys.stdout.write(short_help())
            sys.exit(0)
    try:
        parsed = flags.FLAGS(argv)
        apply_renamed_flags(flags.FLAGS)
        return parsed
    except flags.Error as err:
        print(f"error: {err} (see --helpshort)", file=sys.stderr)
        sys.exit(2)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)

