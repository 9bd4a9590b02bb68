"""train.py's flags are generated from TrainConfig (config_flags.py); its --help is grouped by topic; evaluate.py
and predict.py name their batch flags for what they are and still take --batch_size as a deprecated name."""
import dataclasses
import os
import re
import subprocess
import sys

import pytest
from absl import flags

import cli
from config import FLAG_GROUPS, TrainConfig
from config_flags import config_fields, define_config_flags, field_kind, grouped_help, is_help_request
from errors import ConfigError
from tests.helpers import REPO

FLAG_TYPES = {bool: flags.BooleanParser, int: flags.IntegerParser, float: flags.FloatParser}


@pytest.fixture
def values():
    """A fresh FlagValues holding the generated flags (the process-wide FLAGS is left alone)."""
    fresh = flags.FlagValues()
    define_config_flags(fresh)
    return fresh


def script(name, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, name), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, COLUMNS="100"))


def test_generated_flags_equal_the_dataclass_fields(values):
    fields = config_fields()
    assert sorted(values) == sorted(field.name for field in fields)
    for field in fields:
        flag, choices = values[field.name], field.metadata["choices"]
        assert flag.default == field.default, field.name
        assert flag.help.endswith(field.metadata["help"]), field.name  # absl prefixes an enum's "<a|b>: "
        if choices:
            assert isinstance(flag.parser, flags.EnumParser), field.name
            assert list(flag.parser.enum_values) == list(choices), field.name
        else:
            assert type(flag.parser) is FLAG_TYPES.get(field_kind(field), flags.ArgumentParser), field.name


def test_choices_are_the_owning_modules_lists_and_validation_agrees():
    from data.categories import CATEGORY_TYPES, spec_for
    from data.images import INTENSITY_MODES
    from models.distributed import PRECISIONS, STRATEGIES
    from models.options import ACTIVATIONS, FEATURE_LAYERS, NORMALIZATIONS, UPSAMPLINGS
    choices = {f.name: f.metadata["choices"] for f in config_fields() if f.metadata["choices"]}
    owners = dict(type=CATEGORY_TYPES, intensity=INTENSITY_MODES, strategy=STRATEGIES, precision=PRECISIONS,
                  activation=ACTIVATIONS, feature_layer=FEATURE_LAYERS, normalization=NORMALIZATIONS,
                  encoder_normalization=NORMALIZATIONS, upsampling=UPSAMPLINGS)
    for name, owner in owners.items():
        assert choices[name] is owner, name
    valid = TrainConfig(category="bottle").validate()
    for name, allowed in choices.items():
        for value in allowed:  # every listed value is accepted (with what a recipe or protocol sets)...
            spec_for(dataclasses.replace(valid, **{name: value}).with_presets()[0].validate())
        bad = dataclasses.replace(valid, **{name: "bogus"})  # ... and anything else named by its flag
        with pytest.raises(ConfigError, match=f"^--{name}"):
            spec_for(bad.validate())


def test_a_none_default_is_kept_where_the_value_comes_from_elsewhere(values):
    for name in ("type", "image_size", "patch_size", "rotate", "alpha_start", "critic_lr", "encoder_normalization"):
        assert values[name].default is None, name
    values(["train.py", "--norotate", "--image_size=64", "--type=texture"])
    assert (values["rotate"].value, values["image_size"].value, values["type"].value) == (False, 64, "texture")


def help_sections(text):
    """{group title: [flag names listed under it]} of the grouped help, and every flag name in listing order."""
    sections, order, current = {}, [], None
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = line[:-1]
            sections.setdefault(current, [])
        elif (match := re.match(r"^  --(?:\[no\])?(\w+)", line)):
            sections[current].append(match.group(1))
            order.append(match.group(1))
    return sections, order


def test_grouped_help_lists_each_flag_once_under_its_topic(values):
    text = grouped_help(values, intro="Train CBiGAN.", width=100)
    sections, order = help_sections(text)
    assert list(sections) == list(FLAG_GROUPS.values())  # each heading once, in order
    assert sorted(order) == sorted(f.name for f in config_fields())  # every flag exactly once
    for field in config_fields():
        assert field.name in sections[FLAG_GROUPS[field.metadata["group"]]], field.name
    expected = {"Data": ["category", "data_dir", "intensity"], "Model": ["channels", "normalization"],
                "Training": ["steps", "batch_size", "lr", "recipe", "seed"],
                "Scoring and test-set monitoring": ["score_lambda", "feature_layer", "protocol", "monitor_every"],
                "Run folder and bookkeeping": ["run_dir", "checkpoint_every", "keep_checkpoints"],
                "Scale-out (docs/SCALING.md)": ["strategy", "precision"]}
    for title, names in expected.items():
        assert set(names) <= set(sections[title]), title
    assert "  --normalization=none|batch|layer|instance  (default: none)\n" in text
    assert "  --batch_size=INT  (default: 32)\n      Batch size.\n" in text
    assert "  --[no]ema_warmup  (default: true)\n" in text
    assert "  --alpha_start=FLOAT\n" in text  # None: no default shown, the help says where it comes from
    assert max(len(line) for line in text.splitlines()) <= 100
    narrow = grouped_help(values, width=72)
    assert max(len(line) for line in narrow.splitlines()) <= 72
    assert help_sections(narrow)[1] == order


@pytest.mark.parametrize("argv, asked", [(["t", "--help"], True), (["t", "-h"], True), (["t", "--helpshort"], True),
                                         (["t", "-?"], True), (["t", "--helpfull"], False),
                                         (["t", "--steps=5"], False), (["t", "--", "--help"], False)])
def test_help_requests(argv, asked):
    assert is_help_request(argv) == asked


def test_train_help_is_grouped_and_helpfull_stays_absls():
    outputs = [script("train.py", arg) for arg in ("--help", "-h", "--helpshort")]
    for out in outputs:
        assert out.returncode == 0 and out.stderr == "", out.stderr
        assert out.stdout == outputs[0].stdout
    sections, order = help_sections(outputs[0].stdout)
    assert list(sections) == list(FLAG_GROUPS.values())
    assert sorted(order) == sorted(f.name for f in config_fields())
    assert outputs[0].stdout.startswith("Train CBiGAN on one category")
    assert max(len(line) for line in outputs[0].stdout.splitlines()) <= 100
    full = script("train.py", "--helpfull")
    assert "--flagfile" in full.stdout and "--batch_size: Batch size." in full.stdout


def renamed_values():
    fresh = flags.FlagValues()
    flags.DEFINE_integer("score_batch_size", 64, "Model inputs per forward pass.", lower_bound=1, flag_values=fresh)
    flags.DEFINE_integer("batch_size", None, "Deprecated.", lower_bound=1, flag_values=fresh)
    return fresh


def test_a_former_flag_name_sets_the_new_flag_with_a_warning(capsys):
    values = renamed_values()
    values(["evaluate.py", "--batch_size=8"])
    cli.apply_renamed_flags(values, {"batch_size": "score_batch_size"})
    assert values.score_batch_size == 8
    assert "use --score_batch_size" in capsys.readouterr().err
    values = renamed_values()
    values(["evaluate.py", "--score_batch_size=16"])
    cli.apply_renamed_flags(values, {"batch_size": "score_batch_size"})
    assert values.score_batch_size == 16 and capsys.readouterr().err == ""
    values = renamed_values()
    values(["evaluate.py", "--batch_size=8", "--score_batch_size=16"])
    with pytest.raises(ConfigError, match="give --score_batch_size only"):
        cli.apply_renamed_flags(values, {"batch_size": "score_batch_size"})


@pytest.mark.parametrize("name, new", [("evaluate.py", "score_batch_size"), ("predict.py", "image_batch_size")])
def test_batch_size_in_evaluate_and_predict_is_a_deprecated_name(tmp_path, name, new):
    missing = f"--run={tmp_path / 'missing'}"
    out = script(name, missing, "--batch_size=8")  # an error before TensorFlow loads: missing run / no images
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and lines[-1].startswith("error: "), out.stderr
    assert lines[0] == f"warning: --batch_size is deprecated in {name}: use --{new}, the same setting under its " \
                       "new name"
    out = script(name, missing, "--batch_size=8", f"--{new}=8")
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: --batch_size is the former name of --{new}: give --{new} only"
    out = script(name, missing, f"--{new}=0")
    assert out.returncode == 2 and out.stderr.strip().startswith(f"error: flag --{new}=0: ")
