"""train.py's absl flags, generated from TrainConfig's fields, and its --help grouped by topic.

Each TrainConfig field (config.py) is one flag of the same name, type and default, with the help text, the
allowed values (an enum flag) and the --help topic its metadata holds (config.setting). Nothing here imports
TensorFlow.
"""
import dataclasses
import shutil
import textwrap
import typing

from absl import flags

from config import FLAG_GROUPS, TrainConfig

# absl's names of its short help (--help, -?, --helpshort), and -h, shown grouped instead; --helpfull stays absl's.
HELP_ARGS = ("--help", "-help", "-?", "-h", "--helpshort", "-helpshort")
MAX_HELP_WIDTH = 100


def config_fields():
    """TrainConfig's fields, in their order: one train.py flag each."""
    return dataclasses.fields(TrainConfig)


def field_kind(field):
    """The Python type of a field's value: the X of Optional[X]."""
    hint = typing.get_type_hints(TrainConfig)[field.name]
    return next((t for t in typing.get_args(hint) if t is not type(None)), hint)


def define_config_flags(flag_values=flags.FLAGS, module_name=None):
    """Define one absl flag per TrainConfig field: string (enum when the field has choices), integer, float or
    boolean, its default the field's (None: from the category, the recipe or another flag, as its help says)."""
    for field in config_fields():
        kind, meta = field_kind(field), field.metadata
        common = dict(flag_values=flag_values, module_name=module_name)
        if meta.get("choices"):
            flags.DEFINE_enum(field.name, field.default, list(meta["choices"]), meta["help"], **common)
        elif kind is bool:
            flags.DEFINE_boolean(field.name, field.default, meta["help"], **common)
        elif kind is int:
            flags.DEFINE_integer(field.name, field.default, meta["help"], **common)
        elif kind is float:
            flags.DEFINE_float(field.name, field.default, meta["help"], **common)
        elif kind is str:
            flags.DEFINE_string(field.name, field.default, meta["help"], **common)
        else:
            raise TypeError(f"TrainConfig.{field.name}: no flag type for {kind.__name__}")


def is_help_request(argv):
    """Whether the command line asks for the short help (before a `--` that ends the flags)."""
    args = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    return any(arg in HELP_ARGS for arg in args)


def help_width():
    """The terminal's width, at most MAX_HELP_WIDTH (and at least 60) columns."""
    return max(60, min(MAX_HELP_WIDTH, shutil.get_terminal_size((MAX_HELP_WIDTH, 24)).columns))


def _flag_line(flag):
    """`--name=VALUE` with the allowed values, type or [no] prefix, then the default (none shown when the default
    is None or an empty string: the help says where the value comes from)."""
    if isinstance(flag, flags.BooleanFlag) or isinstance(flag.parser, flags.BooleanParser):
        head = f"--[no]{flag.name}"
    elif getattr(flag.parser, "enum_values", None):
        head = f"--{flag.name}={'|'.join(flag.parser.enum_values)}"
    else:
        metavar = {flags.IntegerParser: "INT", flags.FloatParser: "FLOAT"}.get(type(flag.parser), "TEXT")
        head = f"--{flag.name}={metavar}"
    if flag.default is None or flag.default == "":
        return head
    default = str(flag.default).lower() if isinstance(flag.default, bool) else str(flag.default)
    return f"{head}  (default: {default})"


def grouped_help(flag_values=flags.FLAGS, intro="", width=None):
    """The short help of train.py: intro, then every TrainConfig flag under its topic (FLAG_GROUPS order, fields
    in their TrainConfig order) with its allowed values, default and help, wrapped to `width` columns."""
    width = width or help_width()
    wrap = dict(width=width, break_long_words=False, break_on_hyphens=False)
    lines = []
    for paragraph in intro.strip().split("\n\n") if intro.strip() else []:
        lines += textwrap.wrap(" ".join(paragraph.split()), **wrap) + [""]
    for group, title in FLAG_GROUPS.items():
        lines.append(f"{title}:")
        for field in config_fields():
            if field.metadata["group"] == group:
                lines += textwrap.wrap(_flag_line(flag_values[field.name]), initial_indent="  ",
                                       subsequent_indent="      ", **wrap)
                lines += textwrap.wrap(field.metadata["help"], initial_indent="      ", subsequent_indent="      ",
                                       **wrap)
        lines.append("")
    lines += textwrap.wrap("Settings can come from a file: --flagfile=FILE, one flag per line (e.g. "
                           "docs/examples/bottle-fast.flags); later flags override it. --helpfull lists every "
                           "flag, absl's own included.", **wrap)
    return "\n".join(lines) + "\n"
