"""One import direction (scripts/layers.py): no module imports from a layer above its own, every module is placed
in a layer, and docs/ARCHITECTURE.md shows the layer picture the script prints."""
import subprocess
import sys
import textwrap

from scripts import layers
from tests.helpers import REPO


def test_no_module_imports_from_a_layer_above_its_own():
    problems = layers.upward_imports()
    assert not problems, ("imports from a layer above (move the code down, or the import up; scripts/layers.py "
                          "LAYERS):\n" + "\n".join(problems))


def test_every_module_belongs_to_a_layer():
    missing = layers.unplaced()
    assert not missing, "place these in scripts/layers.py LAYERS:\n" + "\n".join(missing)


def test_architecture_doc_shows_the_layer_picture():
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    picture = layers.picture()
    assert f"```\n{picture}```" in doc, ("docs/ARCHITECTURE.md must show the picture of `python -m scripts.layers` "
                                         "(paste its output into the code block):\n" + picture)


def _write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_check_names_file_line_and_import_of_an_upward_import(tmp_path):
    _write(tmp_path, {
        "errors.py": "import os\n",
        "models/__init__.py": "",
        "models/net.py": """\
            import numpy as np
            from errors import ConfigError  # downward: fine


            def build():
                from training import loop  # upward, inside a function
                return loop
            """,
        "models/relative.py": "from . import net\nfrom ..training import loop\n",
        "training/__init__.py": "",
        "training/loop.py": "from models import net\n",
        "tests/test_x.py": "from training import loop\n",  # tests may import any layer
    })
    problems = layers.upward_imports(tmp_path)
    assert len(problems) == 2
    assert problems[0].startswith("models/net.py:6: from training import loop  (models.net, layer 2 models, "
                                  "imports training.loop, layer 7 training)")
    assert problems[1].startswith("models/relative.py:2: from ..training import loop")
    assert layers.unplaced(tmp_path) == []


def test_a_new_top_level_module_must_be_placed(tmp_path):
    _write(tmp_path, {"errors.py": "", "newtool.py": "import errors\n", "newpkg/__init__.py": "",
                      "newpkg/part.py": "", ".hidden/x.py": "", "runs/r/x.py": ""})
    assert layers.unplaced(tmp_path) == ["newpkg/__init__.py (newpkg)", "newpkg/part.py (newpkg)",
                                         "newtool.py (newtool)"]


def test_picture_lists_each_layer_and_the_imports_between_packages(tmp_path):
    _write(tmp_path, {"errors.py": "", "data/__init__.py": "", "data/files.py": "from errors import DatasetError\n",
                      "train.py": "def main():\n    from data import files\n    import errors\n"})
    picture = layers.picture(tmp_path).splitlines()
    assert picture[0].startswith("9 tools")
    assert "8 entry points  train.py" in picture
    assert "                train.py -> data (1), errors (0)" in picture
    assert "                data/ -> errors (0)" in picture
    assert picture[-1] == "0 base          errors.py"


def test_the_script_prints_the_picture():
    out = subprocess.run([sys.executable, "-m", "scripts.layers"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == layers.picture()
