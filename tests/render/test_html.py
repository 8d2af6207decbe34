import base64
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from _paths import TESTS

from tmsplan.render import html, scene

# http(s) text left in the exported vtk.js scene, none of which is loaded:
JUSTIFIED_URLS = {
    # VTK licence notice in the comments of vtk.js's GLSL shader sources
    "http://www.kitware.com/Copyright.htm",
    # citation in a GLSL comment of the volume shader
    "https://karthikkaranth.me/blog/generating-random-points-in-a-sphere/"
    "#better-choice-of-spherical-coordinates",
    # text of a vtk.js error message (rendering profile not loaded)
    "https://kitware.github.io/vtk-js/docs/concepts_profile.html",
    # base for parsing a path: new URL(path, "http://any").pathname; nothing is fetched
    "http://any",
}


def _urls(text):
    return set(re.findall(r"https?://[^\s\"'`<>&)]*", text))


def _listening_sockets():
    """TCP sockets of this process in the LISTEN state, as (table, local address)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    found = []
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append((table, fields[1]))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_scene_html_is_self_contained(render_scalp, render_record):
    text = html.scene_html(render_record, render_scalp, max_faces=2000)
    assert text.lstrip().lower().startswith("<!doctype html>")
    assert "<script src=" not in text.replace(" ", "").lower()
    assert "vtk" in text.lower()
    # vtk.js's favicon links (kitware.github.io) are made inert; the rest is text
    assert "favicon" not in text
    assert 'setAttribute("href",`data:,`)' in text
    assert _urls(text) <= JUSTIFIED_URLS
    # no server was started for the export
    assert _listening_sockets() == []


def test_inert_urls_replaces_what_a_page_would_load():
    page = (
        '<link rel="icon" href="https://example.org/i.png"><img src=http://example.org/a.png>'
        "<style>body{background:url('https://example.org/b.png')}</style>"
        "<style>p{background:url(https://example.org/c.png)}</style><script>"
        'e.setAttribute("href",`https://example.org/fav-${t}.png`);var u="http://x.org/";'
        'var p=new URL(t,"http://any").pathname;var s="//VTK::Camera::Dec";'
        "// see https://example.org/docs for details</script>"
    )
    out = html.inert_urls(page)
    assert out == (
        '<link rel="icon" href="data:,"><img src=data:,>'
        "<style>body{background:url('data:,')}</style>"
        "<style>p{background:url(data:,)}</style><script>"
        'e.setAttribute("href",`data:,`);var u="data:,";'
        'var p=new URL(t,"http://any").pathname;var s="//VTK::Camera::Dec";'
        "// see https://example.org/docs for details</script>"
    )


def _embedded_scene(page):
    """The vtk.js scene state and its data arrays, decoded from the exported page."""
    (encoded,) = re.findall(r'const base64Str = "([A-Za-z0-9+/=]+)"', page)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(encoded))) as archive:
        index = json.loads(archive.read("index.json"))
    return index["scene"], index["hashes"]


def _instances(state, kind):
    if state.get("type", "").endswith(kind):
        yield state
    for child in state.get("dependencies", []):
        yield from _instances(child, kind)


def _points(polydata, hashes):
    entry = polydata["properties"]["points"]
    dtype = {"Float32Array": "<f4", "Float64Array": "<f8"}[entry["dataType"]]
    raw = base64.b64decode(hashes[entry["hash"]]["content"])
    return np.frombuffer(raw, dtype=dtype).reshape(-1, 3)


def test_scene_html_holds_the_plan_geometry_colours_and_camera(render_scalp, render_record):
    page = html.scene_html(render_record, render_scalp, max_faces=2000)
    state, hashes = _embedded_scene(page)
    actors = list(_instances(state, "Actor"))
    (prop_of, data_of) = ({}, {})
    for actor in actors:
        (prop,) = _instances(actor, "Property")
        (poly,) = _instances(actor, "PolyData")
        prop_of[actor["id"]], data_of[actor["id"]] = prop["properties"], poly
    # the cortical target: an unlit, pure green sphere centred on the recorded point
    target = np.asarray(render_record["targets"][0]["cortical_mm"])
    green = [
        key
        for key, p in prop_of.items()
        if np.allclose(p["color"], scene.COLORS["target"], atol=1 / 255) and p["lighting"] == 0
    ]
    assert len(green) == 1
    centre = _points(data_of[green[0]], hashes).mean(axis=0)
    np.testing.assert_allclose(centre, target, atol=0.5)
    # the scalp: translucent skin colour, its points on the phantom sphere
    (skin,) = [
        k
        for k, p in prop_of.items()
        if np.allclose(p["color"], scene.COLORS["scalp"], atol=1 / 255)
    ]
    assert prop_of[skin]["opacity"] == pytest.approx(0.25)
    radii = np.linalg.norm(_points(data_of[skin], hashes), axis=1)
    assert radii.min() > 85.0 and radii.max() < 95.0
    # the coil body and handle are there
    for layer in ("coil", "handle"):
        assert any(
            np.allclose(p["color"], scene.COLORS[layer], atol=1 / 255) for p in prop_of.values()
        )
    # the camera looks at the head from the front (from +y), above and to one side
    (camera,) = _instances(state, "Camera")
    eye = np.asarray(camera["properties"]["position"]) - camera["properties"]["focalPoint"]
    assert eye[1] > 0 and eye[2] > 0


def test_each_export_holds_the_whole_scene(render_scalp, render_record):
    # the serialisers remember what they sent per object; a page must get everything
    plotter = scene.plan_plotter(render_record, render_scalp, max_faces=2000, labels=False)
    try:
        first, second = (html._scene_archive(plotter) for _ in range(2))
    finally:
        plotter.close()

    def index(archive):
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            return json.loads(zipped.read("index.json"))

    assert index(first) == index(second)
    for prop in _instances(index(second)["scene"], "Property"):
        assert {"color", "opacity", "representation"} <= set(prop["properties"])


def test_old_import_paths_still_work():
    from tmsplan.render import group
    from tmsplan.render.scene import INERT_URL, inert_urls, render_group, scene_html

    assert scene_html is html.scene_html and inert_urls is html.inert_urls
    assert INERT_URL == html.INERT_URL and render_group is group.render_group
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = scene.no_such_name


_NO_SERVER_SCRIPT = """
import json, socket, sys


def refuse(*args, **kwargs):
    raise OSError("the report tried to use the network")


for name in ("connect", "connect_ex", "bind", "sendto"):
    setattr(socket.socket, name, refuse)
sys.path.insert(0, sys.argv[1])
from conftest import _sphere_mesh, _synthetic_record

import tmsplan.render

record, out, t1 = _synthetic_record(), sys.argv[2], sys.argv[3]
tmsplan.render.make_report(record, out, _sphere_mesh(90.0, 2), t1_img=t1)
print(json.dumps(sorted(sys.modules)))
"""

# what pyvista's trame exporter brought in: a web server, its asyncio patch, VTK-WASM
SERVER_MODULES = (
    "nest_asyncio2",
    "trame_server",
    "trame.app",
    "trame_pyvista",
    "trame_vtklocal",
    "wslink",
    "aiohttp",
)


@pytest.mark.slow
def test_report_starts_no_server_and_uses_no_network(tmp_path, render_images):
    nib.save(render_images[0], tmp_path / "t1.nii.gz")
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            _NO_SERVER_SCRIPT,
            str(TESTS),
            str(out),
            str(tmp_path / "t1.nii.gz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    modules = json.loads(run.stdout.strip().splitlines()[-1])
    assert "nest_asyncio2" not in modules
    assert [m for m in modules if m.startswith(SERVER_MODULES)] == []
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "OfflineLocalView" in page  # the vtk.js viewer is inside
