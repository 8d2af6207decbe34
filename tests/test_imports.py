"""Every module of the package imports alone (no import cycle) and stays light."""

import json
import os
import pkgutil
import subprocess
import sys

import pytest

import tmsplan

MODULES = sorted(
    {"tmsplan"} | {m.name for m in pkgutil.walk_packages(tmsplan.__path__, "tmsplan.")}
)
# heavy or server-side packages that importing a tmsplan module must not bring in
HEAVY = ("pyvista", "vtkmodules", "trame", "nest_asyncio2", "wslink", "matplotlib.pyplot")

# One interpreter: a first child imports every module and names the third-party modules
# they load; the parent imports those (never tmsplan), then forks one child per module,
# which imports it with no tmsplan module loaded: a cycle fails there as in a fresh
# interpreter, at a fraction of the start-up cost.
_RUNNER = r"""
import importlib, json, os, sys, traceback

def child(job):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            out = job()
        except BaseException:
            out = {"error": traceback.format_exc()[-3000:]}
        with os.fdopen(write, "w") as handle:
            json.dump(out, handle)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        text = handle.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"error": "the child died"}

def ours(name):
    return name == "tmsplan" or name.startswith("tmsplan.")

names, heavy = json.loads(sys.stdin.read())

def everything():
    for name in names:
        importlib.import_module(name)
    return {"loaded": [m for m in sys.modules if not ours(m)]}

loaded = child(everything).get("loaded", [])
for name in loaded:
    if not any(name == h or name.startswith(h + ".") for h in heavy):
        try:
            importlib.import_module(name)
        except Exception:
            pass  # aliases and private modules that are not importable by name
assert not [m for m in sys.modules if ours(m)]

def one(name):
    def job():
        importlib.import_module(name)
        return {"error": None, "modules": sorted(sys.modules)}
    return job

print(json.dumps({name: child(one(name)) for name in names}))
"""


@pytest.fixture(scope="module")
def imported():
    """``{module: {"error": str | None, "modules": [...]}}``, each imported alone."""
    if not hasattr(os, "fork"):  # no fork: one interpreter per module
        results = {}
        for name in MODULES:
            code = f"import importlib, json, sys; importlib.import_module({name!r}); "
            code += "print(json.dumps(sorted(sys.modules)))"
            run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            ok = run.returncode == 0
            results[name] = {
                "error": None if ok else run.stderr[-3000:],
                "modules": json.loads(run.stdout.splitlines()[-1]) if ok else [],
            }
        return results
    run = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps([MODULES, HEAVY]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_the_package_is_walked_whole():
    assert len(MODULES) > 60 and "tmsplan.render.report" in MODULES
    assert "tmsplan.io.outputs" in MODULES and "tmsplan.cli" in MODULES


@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone_and_stays_light(imported, module):
    result = imported[module]
    assert result["error"] is None, result["error"]  # an import cycle fails here
    assert [
        h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in result["modules"])
    ] == []


def test_a_cycle_would_be_caught(tmp_path):
    """The runner reports a module that cannot be imported alone (here: a cycle)."""
    package = tmp_path / "cyclepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclepkg.b import B\nA = 1\n")
    (package / "b.py").write_text("from cyclepkg.a import A\nB = 2\n")
    if not hasattr(os, "fork"):
        pytest.skip("the runner forks")
    run = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps([["cyclepkg.a", "cyclepkg"], []]),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    results = json.loads(run.stdout.splitlines()[-1])
    assert "ImportError" in results["cyclepkg.a"]["error"]
    assert results["cyclepkg"]["error"] is None
