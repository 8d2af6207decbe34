from pathlib import Path

import tmsplan.render

RENDER = Path(tmsplan.render.__file__).parent
# each module imports alone and stays light: tests/test_imports.py (the whole package)


def test_every_render_module_is_short():
    for path in RENDER.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path.name
