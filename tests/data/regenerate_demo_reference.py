"""Regenerate ``tests/data/demo_target.json``, the reference copy of the demo's record.

Run from the repository root after a change that is meant to move the demo's target,
entry or coil pose (e.g. a new scalp surface algorithm), then review the diff::

    python tests/data/regenerate_demo_reference.py

It runs ``tmsplan demo --no-report --formats none`` in a temporary folder and stores its
``target.json`` with absolute paths reduced to file names.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "demo_target.json"


def demo_record() -> dict:
    """The record ``tmsplan demo`` writes now (paths reduced to file names)."""
    from tmsplan.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        code = main(["demo", "--out", str(out), "--no-report", "--formats", "none"])
        if code != 0:
            raise SystemExit(f"tmsplan demo failed with exit code {code}")
        record = json.loads((out / "target.json").read_text(encoding="utf-8"))
    return _file_names(record)


def _file_names(value):
    """``value`` with every absolute path replaced by its file name (they differ per machine)."""
    if isinstance(value, dict):
        return {key: _file_names(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_file_names(item) for item in value]
    if isinstance(value, str) and value.startswith("/"):
        return Path(value).name
    return value


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    REFERENCE.write_text(json.dumps(demo_record(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE}; review 'git diff {REFERENCE.name}' before committing it")
