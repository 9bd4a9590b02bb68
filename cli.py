"""Shared edge code of the entry scripts: quiet TensorFlow logs, one-line errors with exit code 2."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_main(main_fn):
    """Run main_fn(argv) under absl; a UserError prints one line and exits 2."""
    from absl import app

    from errors import TrainingDiverged, UserError

    def wrapped(argv):
        try:
            return main_fn(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except TrainingDiverged as err:
            print(f"error: training diverged: {err}", file=sys.stderr)
            sys.exit(1)

    try:
        app.run(wrapped)
    except SystemExit:
        raise


def explicit_flags(flag_values, names):
    """The flags among names that the user set on the command line."""
    return [name for name in names if flag_values[name].present]
