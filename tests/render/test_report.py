import base64
import html
import html.parser
import io
import re
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import _sphere_mesh, _synthetic_record
from PIL import Image
from test_html import JUSTIFIED_URLS

from tmsplan.errors import OutputExistsError, RecordError, TmsplanWarning
from tmsplan.io.images import file_sha256
from tmsplan.render import report
from tmsplan.render._vtk import is_blank, read_png

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,3000",
    "--virtual-time-budget=15000",
    "--enable-logging=stderr",
    "--v=0",
]


class _Resources(html.parser.HTMLParser):
    """Collect every src/href and every iframe srcdoc document."""

    def __init__(self):
        super().__init__()
        self.urls = []
        self.srcdocs = []
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "data", "poster") and value is not None:
                self.urls.append(value)
            if name == "srcdoc" and value is not None:
                self.srcdocs.append(value)


def _resources(text):
    parser = _Resources()
    parser.feed(text)
    urls, tags = list(parser.urls), list(parser.tags)
    for inner in parser.srcdocs:
        nested = _resources(inner)
        urls += nested[0]
        tags += nested[1]
    return urls, tags


def _png(tmp_path, name, rng, size=(120, 90)):
    data = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    path = tmp_path / f"{name}.png"
    buffer = io.BytesIO()
    Image.fromarray(data).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def _record_with_unreachable():
    return _synthetic_record(
        warnings=("the map was thresholded at 3.1", "ROI <mask> & activation overlap is small"),
        extra_targets=[((0.5, 0.2, 0.84), 35.0, "R-deep", False)],
    )


FAKE_SCENE = (
    "<!doctype html><html><head><title>scene</title></head><body>"
    '<div class="content"></div><script>var s = "see https://kitware.github.io/vtk-js";'
    "</script></body></html>"
)


def test_check_record_t1(tmp_path, render_images):
    record = _synthetic_record()
    with pytest.raises(RecordError, match="names no T1"):
        report.check_record_t1(record)
    record["t1"] = {"path": str(tmp_path / "gone.nii.gz"), "sha256": "0" * 64}
    with pytest.raises(RecordError, match="does not exist"):
        report.check_record_t1(record)
    nib.save(render_images[0], tmp_path / "t1.nii.gz")
    record["t1"] = {
        "path": str(tmp_path / "t1.nii.gz"),
        "sha256": file_sha256(tmp_path / "t1.nii.gz"),
    }
    assert report.check_record_t1(record) == []
    record["t1"]["sha256"] = "f" * 64
    (warning,) = report.check_record_t1(record)
    assert "CHANGED" in warning and "t1.nii.gz" in warning
    record["t1"]["sha256"] = None
    (warning,) = report.check_record_t1(record)
    assert "no checksum" in warning


def test_handle_angle():
    record = _synthetic_record()
    angle, words = report.handle_angle(record["targets"][0])
    assert angle == pytest.approx(0.0, abs=1e-6)  # the builder points the handle straight back
    assert words.startswith("backwards")
    target = dict(record["targets"][0])
    matrix = np.asarray(target["coil_matrix"])
    turn = np.deg2rad(45.0)  # rotate the coil 45 deg about its z axis
    rot = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1.0]])
    turned = matrix.copy()
    turned[:3, :3] = matrix[:3, :3] @ rot
    target["coil_matrix"] = turned.tolist()
    assert report.handle_angle(target)[0] == pytest.approx(45.0, abs=1e-6)


def test_report_is_self_contained_with_numbers_and_warnings(tmp_path):
    rng = np.random.default_rng(1)
    record = _record_with_unreachable()
    pictures = {name: _png(tmp_path, name, rng) for name in ("left", "top", "coil", "slices")}
    out = report.write_report(
        record,
        tmp_path / "plan",
        pictures=pictures,
        scene_html=FAKE_SCENE,
        warnings=["THE T1 IMAGE HAS CHANGED since the plan was made"],
    )
    assert out == tmp_path / "plan" / "report.html"
    text = out.read_text(encoding="utf-8")
    urls, tags = _resources(text)
    # no resource is loaded from anywhere: every src/href is inline
    assert [u for u in urls if not u.startswith(("data:", "#"))] == []
    assert not any(re.match(r"\s*(https?:)?//", u) for u in urls)
    assert "iframe" in tags and "link" not in tags
    # the pictures are inlined byte for byte (small enough: no re-encoding)
    inlined = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert sorted(base64.b64decode(x) for x in inlined) == sorted(
        p.read_bytes() for p in pictures.values()
    )
    # the numbers
    target = record["targets"][0]
    assert "(-43.2, 25.2, 51.8)" in text  # cortical target (space and MNI)
    assert "(-54.0, 31.5, 64.8)" in text  # scalp entry
    assert ">18.0<" in text  # depth
    assert ">4.0<" in text  # coil-skin distance
    assert "0.0 deg from straight back" in text
    assert "(-0.224, -0.937, 0.269)" in text  # handle direction
    assert np.allclose(target["handle_direction"], [-0.22396, -0.93681, 0.26876], atol=1e-4)
    assert ">42<" in text and ">6.00<" in text and ">3.10<" in text  # cluster, peak, threshold
    assert "Phantom et al. (2020) J Synthetic 1:1" in text
    assert "/data/phantom_zmap.nii.gz" in text
    assert "left dorsolateral prefrontal cortex" in text
    # warnings (escaped), the unreachable target in red, the disclaimer and the checklist
    assert 'class="banner" id="warnings"' in text
    assert "3 warnings" in text
    assert "ROI &lt;mask&gt; &amp; activation overlap is small" in text
    assert "THE T1 IMAGE HAS CHANGED" in text
    assert 'class="target unreachable"' in text and "UNREACHABLE" in text
    assert "NO: deeper than 30 mm" in text
    assert "not an E-field model" in text and "clinician must review every target" in text
    assert text.count('type="checkbox"') >= 5
    assert "intended hemisphere" in text
    # automatic checks: the right-hemisphere target is flagged against the left ROI
    assert "target x (MNI) = 27.6 mm: right hemisphere; ROI: left" in text
    with pytest.raises(OutputExistsError):
        report.write_report(record, tmp_path / "plan", pictures=pictures, scene_html=None)


@pytest.mark.slow
def test_report_shrinks_pictures_to_fit_the_size_budget(tmp_path):
    rng = np.random.default_rng(2)
    pictures = {f"v{i}": _png(tmp_path, f"v{i}", rng, size=(640, 640)) for i in range(4)}
    raw = sum(p.stat().st_size for p in pictures.values())
    assert raw > report.MAX_REPORT_BYTES  # noise does not compress
    out = report.write_report(_synthetic_record(), tmp_path, pictures=pictures, scene_html=None)
    assert out.stat().st_size <= report.MAX_REPORT_BYTES
    assert out.read_text().count("data:image/png;base64,") == 4


def test_report_over_budget_warns_and_is_still_written(tmp_path):
    big_scene = "<!doctype html><html><head></head><body>" + "x" * (report.MAX_REPORT_BYTES + 10)
    with pytest.warns(TmsplanWarning, match="over its 3.0 MB budget"):
        out = report.write_report(
            _synthetic_record(), tmp_path, pictures={}, scene_html=big_scene + "</body></html>"
        )
    assert out.stat().st_size > report.MAX_REPORT_BYTES


def test_write_report_makes_resource_urls_of_the_scene_inert(tmp_path):
    scene_page = (
        "<!doctype html><html><head></head><body><script>e.setAttribute('href',"
        "'https://kitware.github.io/vtk-js/icon/favicon-16x16.png');</script></body></html>"
    )
    out = report.write_report(_synthetic_record(), tmp_path, pictures={}, scene_html=scene_page)
    text = out.read_text()
    assert "http" not in text and "e.setAttribute(&#x27;href&#x27;,&#x27;data:,&#x27;)" in text


@pytest.mark.parametrize("failing", ["slices_png", "scene_html"])
def test_make_report_writes_nothing_when_a_part_fails(
    tmp_path, monkeypatch, render_images, failing
):
    from tmsplan.render import html as render_html
    from tmsplan.render import scene, slices

    def boom(*args, **kwargs):
        raise RuntimeError(f"{failing} failed")

    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :10] = 255
    monkeypatch.setattr(scene, "render_view_images", lambda *a, **k: {"left": image})
    monkeypatch.setattr(render_html if failing == "scene_html" else slices, failing, boom)
    t1 = render_images[0]
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        report.make_report(_synthetic_record(), tmp_path / "out", _sphere_mesh(90.0, 2), t1_img=t1)
    assert not (tmp_path / "out").exists()


def test_make_report_removes_its_pictures_when_the_report_cannot_be_written(
    tmp_path, monkeypatch, render_images
):
    from tmsplan.render import html as render_html
    from tmsplan.render import scene

    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :10] = 255
    monkeypatch.setattr(scene, "render_view_images", lambda *a, **k: {"left": image})
    monkeypatch.setattr(render_html, "scene_html", lambda *a, **k: FAKE_SCENE)
    out = tmp_path / "out"
    (out / report.REPORT_FILENAME).mkdir(parents=True)  # in the way (found when written)
    (out / report.REPORT_FILENAME / "keep").write_text("x")
    with pytest.raises(OSError):
        report.make_report(
            _synthetic_record(), out, _sphere_mesh(90.0, 2), t1_img=render_images[0], overwrite=True
        )
    assert sorted(p.name for p in out.iterdir()) == [report.REPORT_FILENAME]


def test_report_without_warnings_says_so(tmp_path):
    record = _synthetic_record(warnings=())
    text = report.write_report(record, tmp_path, pictures={}, scene_html=None).read_text()
    assert "No warnings were recorded." in text
    assert 'class="banner"' not in text


@pytest.fixture(scope="module")
def made_report(tmp_path_factory, render_images):
    tmp = tmp_path_factory.mktemp("plan")
    t1, activation, roi = render_images
    nib.save(t1, tmp / "t1.nii.gz")
    record = _record_with_unreachable()
    record["t1"] = {"path": str(tmp / "t1.nii.gz"), "sha256": "0" * 64}  # not the file's
    out = report.make_report(
        record,
        tmp / "out",
        _sphere_mesh(90.0),
        brain_mesh=_sphere_mesh(75.0, 3),
        activation_img=activation,
        roi_img=roi,
        landmarks={"Cz": [0.0, 0.0, 90.0]},
    )
    return out


@pytest.mark.slow
def test_make_report_writes_pictures_and_one_small_report(made_report):
    folder = made_report.parent
    names = sorted(p.name for p in (folder / "pictures").iterdir())
    assert names == ["coil.png", "front.png", "left.png", "right.png", "slices.png", "top.png"]
    for path in (folder / "pictures").iterdir():
        assert not is_blank(read_png(path.read_bytes()))
    assert made_report.stat().st_size <= report.MAX_REPORT_BYTES
    text = made_report.read_text(encoding="utf-8")
    urls, tags = _resources(text)
    assert [u for u in urls if not u.startswith(("data:", "#", "blob:"))] == []
    assert "canvas" not in tags  # the canvas is made by vtk.js when the page runs
    assert text.count("data:image/png;base64,") == 6
    assert "THE T1 IMAGE HAS CHANGED" in text  # the checksum did not match: red banner
    assert "scalp entry 0.06 mm from the scalp surface drawn" in text
    # no URL to load anywhere, the vtk.js inside the iframe included: the only http(s)
    # text left is listed (and justified) in test_render_scene.JUSTIFIED_URLS
    inner = html.unescape(text)
    assert "favicon" not in inner
    assert re.findall(r"https?://[^\s\"'`<>&)]*", inner)  # the licence notices are kept
    assert set(re.findall(r"https?://[^\s\"'`<>&)]*", inner)) <= JUSTIFIED_URLS


def test_make_report_refuses_a_missing_t1(tmp_path):
    record = _synthetic_record()
    record["t1"] = {"path": str(tmp_path / "moved.nii.gz"), "sha256": "0" * 64}
    with pytest.raises(RecordError, match="moved.nii.gz.*does not exist"):
        report.make_report(record, tmp_path / "out", _sphere_mesh(90.0, 2))


def test_make_report_refuses_another_schema(tmp_path):
    record = _synthetic_record()
    record["schema_version"] = 99
    with pytest.raises(RecordError, match="schema version 99"):
        report.make_report(record, tmp_path / "out", _sphere_mesh(90.0, 2))


def _chromium(args, tmp_path, url):
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which("chromium") is None,
    reason="needs Debian's headless Chromium at /usr/bin/chromium (apt-get install chromium)",
)
def test_report_opens_in_a_headless_browser(made_report, tmp_path):
    url = made_report.resolve().as_uri()
    dom = _chromium(["--dump-dom"], tmp_path, url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # the page's own check found vtk.js's WebGL canvas inside the 3D view and no error
    status = re.search(r'<p id="scene-status" data-state="(\w+)">([^<]*)', dom.stdout)
    assert status is not None, dom.stdout[:2000]
    assert status.group(1) == "ok", status.group(2)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if re.search(r"Uncaught|TypeError|ReferenceError", line)]
    assert not re.search(r"net::ERR_|Failed to load resource", dom.stderr)
    shot = tmp_path / "page.png"
    result = _chromium([f"--screenshot={shot}"], tmp_path, url)
    assert result.returncode == 0, result.stderr[-2000:]
    image = read_png(shot.read_bytes())
    assert not is_blank(image)
    # the red warning banner is on the first screen
    red = (image[..., 0] > 150) & (image[..., 1] < 40) & (image[..., 2] < 60)
    assert red[:800].sum() > 5000


@pytest.mark.parametrize("step", ["_stage", "_commit"])
def test_an_interrupted_report_leaves_the_previous_one_whole(
    tmp_path, monkeypatch, render_images, step
):
    from tmsplan.io import outputs
    from tmsplan.render import html as render_html
    from tmsplan.render import scene

    def pictures(value):
        image = np.full((20, 30, 3), value, np.uint8)
        image[:, :10] = 255 - value
        return {"left": image, "top": image[::-1].copy()}

    monkeypatch.setattr(render_html, "scene_html", lambda *a, **k: FAKE_SCENE)
    monkeypatch.setattr(scene, "render_view_images", lambda *a, **k: pictures(0))
    out = tmp_path / "out"
    args = (_synthetic_record(), out, _sphere_mesh(90.0, 2))
    report.make_report(*args, t1_img=render_images[0])
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert len(before) == 4  # left, top, slices, report.html

    real, calls = getattr(outputs, step), []

    def interrupted(*a, **k):  # Ctrl-C once the first file is staged (or in place)
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(scene, "render_view_images", lambda *a, **k: pictures(120))
    monkeypatch.setattr(outputs, step, interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.make_report(*args, t1_img=render_images[0], overwrite=True)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # every old file as it was, nothing new, no hidden leftovers
    assert sorted(p.name for p in out.iterdir()) == ["pictures", report.REPORT_FILENAME]

    fresh = tmp_path / "fresh"
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        report.make_report(
            _synthetic_record(), fresh, _sphere_mesh(90.0, 2), t1_img=render_images[0]
        )
    assert not fresh.exists()


@pytest.mark.parametrize("entry_x", [-70.0, 70.0])
def test_cap_labels_drawn_are_the_midline_and_the_entry_side(entry_x):
    """The report draws the cap positions of the entry's side (odd = left) and the midline."""
    positions = {
        "Cz": [0.0, -10.0, 100.0],
        "Fz": [0.0, 40.0, 80.0],
        "F3": [-45.0, 45.0, 56.0],
        "F4": [45.0, 45.0, 56.0],
        "C3": [-60.0, -10.0, 70.0],
        "C4": [60.0, -10.0, 70.0],
        "AF9": [-60.0, 60.0, 0.0],  # a 10-10 position the pictures do not label
    }
    record = {
        "eeg1020": {"positions": positions, "beam_f3": {"point_mm": [-44.0, 46.0, 55.0]}},
        "targets": [{"scalp_mm": [entry_x, 30.0, 50.0]}],
    }
    drawn = report._cap_landmarks(record)
    if entry_x < 0:  # left (RAS+ x < 0): odd labels and the Beam F3 point
        assert set(drawn) == {"Cz", "Fz", "F3", "C3", "Beam F3"}
        assert drawn["F3"] == positions["F3"]
    else:
        assert set(drawn) == {"Cz", "Fz", "F4", "C4"}
