"""The layers of the code: a module imports only from its own layer or below (module level and inside functions).

    python -m scripts.layers          # the layer picture: each layer's packages and modules, and what they import

LAYERS (bottom to top) is the one table that places every top-level package and module of the repository;
tests/docs/test_layers.py checks that no import goes upward, that every module is placed, and that
docs/ARCHITECTURE.md shows the picture printed here. The files are parsed with `ast`, never imported (no
TensorFlow needed); an import is counted wherever it stands (module level, functions, conditionals).
"""
import ast
import os
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (layer name, top-level packages and modules), bottom to top.
LAYERS = (
    ("base", ("errors", "runtime_threads", "devices")),
    ("data", ("data",)),
    ("models", ("models",)),
    ("run folder", ("run_folder",)),
    ("config", ("config", "config_flags")),
    ("inference", ("inference",)),
    ("evaluation", ("evaluation",)),
    ("training", ("training",)),
    ("entry points", ("cli", "train", "evaluate", "predict", "export", "sweep")),
    ("tools", ("bench", "scripts", "tests")),
)
ANY_LAYER = ("tests",)  # may import from every layer; their imports are not drawn in the picture
WIDTH = 112  # of the picture's lines
SKIPPED_FOLDERS = {"runs", "__pycache__", "node_modules"}  # and every folder whose name starts with "."


def layer_of(name):
    """The layer number of a dotted module name (by its top-level package or module), or None if unplaced."""
    top = name.split(".")[0]
    for number, (_, units) in enumerate(LAYERS):
        if top in units:
            return number
    return None


def repo_modules(root=REPO):
    """{dotted module name: path relative to root} of every .py file of the repository (a package's
    __init__.py is the package itself); virtual environments, run folders and hidden folders are skipped."""
    root = Path(root)
    modules = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in SKIPPED_FOLDERS
                               and not (Path(folder, d) / "pyvenv.cfg").exists())
        for file in sorted(files):
            if file.endswith(".py"):
                relative = Path(folder, file).relative_to(root)
                parts = list(relative.with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                modules[".".join(parts)] = relative.as_posix()
    return modules


def imports(module, relative_path, root=REPO, tops=None):
    """[(line, imported module, the import as written)] of one file: every import statement, also inside
    functions, whose top-level name is one of the repository's (tops); relative imports resolved."""
    source = Path(root, relative_path).read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(relative_path))
    package = module.split(".") if relative_path.endswith("__init__.py") else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if base else alias.name for alias in node.names]
        else:
            continue
        written = " ".join(ast.get_source_segment(source, node).split())
        for name in names:
            if tops is None or name.split(".")[0] in tops:
                found.append((node.lineno, name, written))
    return sorted(found)


def import_table(root=REPO):
    """{module: [(line, imported module, the import as written)]} of every module of the repository."""
    modules = repo_modules(root)
    tops = {name.split(".")[0] for name in modules}
    return {module: imports(module, path, root, tops) for module, path in modules.items()}, modules


def unplaced(root=REPO):
    """Modules whose top-level package or module LAYERS does not place: ["path (top-level name)"]."""
    return sorted(f"{path} ({module.split('.')[0]})" for module, path in repo_modules(root).items()
                  if layer_of(module) is None)


def upward_imports(root=REPO):
    """Every import from a layer above the importing module's own: ["file:line: the import (...)"]."""
    table, modules = import_table(root)
    problems = []
    for module, found in table.items():
        own = layer_of(module)
        if own is None or module.split(".")[0] in ANY_LAYER:
            continue
        for line, name, written in found:
            target = layer_of(name)
            if target is not None and target > own:
                problems.append(f"{modules[module]}:{line}: {written}  ({module}, layer {own} {LAYERS[own][0]}, "
                                f"imports {name}, layer {target} {LAYERS[target][0]})")
    return problems


def _unit_label(unit, modules):
    return f"{unit}/" if any(name.startswith(unit + ".") for name in modules) else f"{unit}.py"


def _wrap(items, head):
    """head followed by the items joined with ", ", in lines of at most WIDTH characters (an item is not split)."""
    lines, line = [], head
    for item in items:
        if line != head and len(line) + len(item) + 1 > WIDTH:
            lines.append(line.rstrip())
            line = " " * len(head)
        line += item + ", "
    return lines + [line[:-2]]


def picture(root=REPO):
    """The layers, top to bottom: each layer's packages and modules, and for each of them the other packages and
    modules it imports (with their layer numbers)."""
    table, modules = import_table(root)
    edges = defaultdict(set)
    for module, found in table.items():
        unit = module.split(".")[0]
        for _, name, _ in found:
            target = name.split(".")[0]
            if target != unit and layer_of(name) is not None:
                edges[unit].add(target)
    present = {module.split(".")[0] for module in modules}
    lines = []
    for number in reversed(range(len(LAYERS))):
        name, units = LAYERS[number]
        units = [unit for unit in units if unit in present]
        lines.append(f"{number} {name:<13} {'  '.join(_unit_label(unit, modules) for unit in units)}")
        for unit in units:
            if unit in ANY_LAYER:
                lines.append(f"{'':16}{_unit_label(unit, modules)} -> any layer")
                continue
            targets = sorted(edges[unit], key=lambda t: (-layer_of(t), t))
            if targets:
                head = f"{'':16}{_unit_label(unit, modules)} -> "
                lines.extend(_wrap([f"{t} ({layer_of(t)})" for t in targets], head))
    return "\n".join(lines) + "\n"


def main():
    sys.stdout.write(picture())
    problems = upward_imports() + [f"{p}: not in scripts/layers.py LAYERS" for p in unplaced()]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
