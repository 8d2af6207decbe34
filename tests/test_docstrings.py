"""Every module of the package opens with a docstring of three lines or less."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the source tree (docs/ is not installed)
PACKAGE = ROOT / "tmsplan"
DOCS = ROOT / "docs"


def _module_docstrings():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent), ast.get_docstring(ast.parse(path.read_text()))


def test_every_module_has_a_docstring_of_three_lines_or_less():
    missing = [str(path) for path, doc in _module_docstrings() if not doc]
    long = {str(path): len(doc.splitlines()) for path, doc in _module_docstrings() if doc}
    long = {path: n for path, n in long.items() if n > 3}
    assert missing == [] and long == {}, (missing, long)  # design prose goes to docs/*.md


def test_design_notes_named_in_a_docstring_exist():
    for path, doc in _module_docstrings():
        if doc and "docs/" in doc:
            page = doc.split("docs/", 1)[1].split("``", 1)[0]
            assert (DOCS / page).is_file(), (str(path), page)
            module = ".".join(path.with_suffix("").parts).removesuffix(".__init__")
            if "section ``" in doc:
                assert f"### `{module}`" in (DOCS / page).read_text(), (str(path), page)
