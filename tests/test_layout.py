"""The package layout: subpackages depend on each other in one direction only."""

from __future__ import annotations

import ast
from pathlib import Path

import tmsplan

#: Lowest first: a module may import tmsplan modules of its own layer or of a layer before it.
LAYERS = [
    "errors",
    "spaces",
    "io",
    "xfm",
    "coil",
    "head",
    "target",
    "clinic",
    "export",
    "render",
    "pipeline",
    "cohort",
    "cli",
    "__main__",
]
PACKAGE = Path(tmsplan.__file__).parent


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:  # the top-level package: its lazy public API may name any layer
        return "__init__"
    return parts[1]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tmsplan"):
            if node.module == "tmsplan":
                found.update(f"tmsplan.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tmsplan"))
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def test_every_module_belongs_to_a_known_layer():
    layers = {_layer(name) for name, _ in _modules()} - {"__init__"}
    assert layers <= set(LAYERS), sorted(layers - set(LAYERS))


def test_imports_go_from_later_layers_to_earlier_ones_only():
    rank = {name: i for i, name in enumerate(LAYERS)}
    wrong = []
    for name, path in _modules():
        layer = _layer(name)
        if layer == "__init__":
            continue
        for target in _imports(path):
            other = _layer(target)
            if other in {"__init__", "__version__"}:
                continue  # `from tmsplan import __version__`
            if rank[other] > rank[layer]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, wrong


def test_top_level_holds_only_the_shared_modules():
    flat = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__", "__main__", "errors", "spaces"]
