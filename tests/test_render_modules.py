import subprocess
import sys
from pathlib import Path

import pytest

import tmsplan.render

RENDER = Path(tmsplan.render.__file__).parent
MODULES = sorted(f"tmsplan.render.{p.stem}" for p in RENDER.glob("*.py") if p.stem != "__init__")

# heavy or server-side packages no import of the rendering layer may bring in
HEAVY = ("pyvista", "vtkmodules", "trame", "nest_asyncio2", "wslink", "matplotlib.pyplot")

_CHECK = """
import json, sys
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("module", MODULES)
def test_each_render_module_imports_alone_and_stays_light(module):
    run = subprocess.run(
        [sys.executable, "-c", _CHECK, module], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]  # an import cycle fails here
    loaded = run.stdout.strip().splitlines()[-1]
    assert [name for name in HEAVY if f'"{name}' in loaded] == []


def test_every_render_module_is_short():
    for path in RENDER.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name
