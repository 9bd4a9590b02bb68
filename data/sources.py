"""Which images a run reads: the MVTec AD layout (--data_dir/--category, data/files.py) or plain folders
(--normal_dir and friends, data/folders.py). Training, evaluation and the benchmarks call `find_files(config)`
and get the same CategoryFiles either way.
"""
import os

from data.files import CategoryFiles, find_category
from data.folders import find_folders

FOLDER_SETTINGS = ("normal_dir", "abnormal_dir", "normal_test_dir", "mask_dir")


def uses_folders(config) -> bool:
    """Whether the config reads plain folders (--normal_dir) instead of the MVTec layout."""
    return bool(getattr(config, "normal_dir", ""))


def find_files(config, data_dir=None) -> CategoryFiles:
    """The config's images. data_dir overrides config.data_dir (MVTec layout only)."""
    if uses_folders(config):
        return find_folders(config.normal_dir, config.abnormal_dir or None, config.normal_test_dir or None,
                            config.mask_dir or None, normal_test_fraction=config.normal_test_fraction,
                            split_seed=config.normal_split_seed)
    return find_category(data_dir or config.data_dir, config.category)


def folder_category_name(normal_dir: str) -> str:
    """The default run name of folder inputs: the name of normal_dir's parent folder (my_part/good -> my_part),
    else normal_dir's own name."""
    path = os.path.abspath(normal_dir)
    parent = os.path.basename(os.path.dirname(path))
    return parent or os.path.basename(path) or "folders"


def absolute_folders(values: dict) -> dict:
    """The folder settings of `values` (flag name -> value) as absolute paths, so that a run folder's config.json
    still finds its images when evaluate.py or a resume runs from another working directory."""
    return {name: os.path.abspath(values[name]) if values.get(name) else values.get(name, "")
            for name in FOLDER_SETTINGS if name in values}
