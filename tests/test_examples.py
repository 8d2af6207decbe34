"""Smoke test: every script in examples/ runs to the end.

Each example takes an optional output folder as its first argument; it is run in a
fresh process (as a user would), inside a temporary folder.
"""

import os
import subprocess
import sys

import pytest
from _paths import REPO

from tmsplan.io.record import read_record
from tmsplan.io.record_checks import validate_record

ROOT = REPO
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples():
    assert EXAMPLES, "examples/ holds no script"


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(script), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stdout.strip()
    # every plan an example wrote is a consistent record
    for path in tmp_path.rglob("target.json"):
        validate_record(read_record(path), source=str(path))
