"""Convert the elpv-dataset package's solar-cell images into MVTec AD layout (the embedded demo data).

    python -m scripts.prepare_elpv                       # -> data/elpv/mono, data/elpv/poly
    python -m scripts.prepare_elpv --types=mono --output_dir=/tmp/elpv

Re-running with the same settings is a quick no-op; see data/elpv_layout.py for the layout and the split rule.
"""

import sys

from absl import app, flags

from data import elpv
from data.elpv_layout import DEFAULT_TYPES
from errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "data/elpv", "Folder that receives one MVTec-style category per cell type.")
flags.DEFINE_list("types", list(DEFAULT_TYPES), "Cell types to convert (comma separated): mono, poly.")
flags.DEFINE_float("test_good_fraction", 0.25, "Fraction of the good cells of each type held out in test/good.")
flags.DEFINE_integer("seed", 0, "Seed of the deterministic good-cell split.")
flags.DEFINE_string("source", None, "A labels.csv (images relative to it); default: the installed package's.")
flags.DEFINE_bool("overwrite", False, "Replace an existing category folder made with other settings.")
flags.DEFINE_bool("dry_run", False, "Only print what would be written.")


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    try:
        summary = elpv.convert(FLAGS.source, FLAGS.output_dir, types=FLAGS.types,
                               test_good_fraction=FLAGS.test_good_fraction, seed=FLAGS.seed,
                               overwrite=FLAGS.overwrite, dry_run=FLAGS.dry_run)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(elpv.format_summary(summary))
    return 0


if __name__ == "__main__":
    app.run(main)
