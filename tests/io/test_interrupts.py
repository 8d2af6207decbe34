"""Ctrl-C and kills: exit 130 with one line, nothing half-written, nothing hidden left.

The end-to-end tests run ``python -m tmsplan`` as a child process and send SIGINT
at named stages, from the imports to the moment the plan folder is moved into
place. The private hook ``TMSPLAN_TEST_PAUSE_AT="<stage> <seconds> <flag file>"``
(see :func:`tmsplan.io.interrupts.checkpoint`) creates the flag file when the run
reaches the stage and then sleeps ``seconds``; a pause of 0 lets the run go on,
so a signal sent a little later lands inside the next stage's C code (VTK).
"""

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import tmsplan
from tmsplan.errors import TmsplanWarning
from tmsplan.io import interrupts
from tmsplan.io.outputs import remove_dead_leftovers, staged_folder, write_text

PACKAGE_ROOT = Path(tmsplan.__file__).resolve().parents[1]
TARGET = ["--target-mni", "-38", "44", "26"]


def _env(hook: str | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    env.pop("TMSPLAN_TEST_PAUSE_AT", None)
    if hook:
        env["TMSPLAN_TEST_PAUSE_AT"] = hook
    return env


def _start(args, cwd, hook=None):
    return subprocess.Popen(
        [sys.executable, "-m", "tmsplan", *args],
        cwd=cwd,
        env=_env(hook),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(flag: Path, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not flag.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (rc {proc.returncode}) before the stage:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail("the run never reached the stage")
        time.sleep(0.01)


def _interrupt_at(tmp_path, args, stage, *, pause=0.0, delay=0.0):
    """Run until ``stage``, wait ``delay`` s, send SIGINT; return (rc, stderr lines, out)."""
    out = tmp_path / "plan"
    flag = tmp_path / "reached"
    proc = _start([*args, "--out", str(out)], tmp_path, f"{stage} {pause} {flag}")
    _wait_for(flag, proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = err.splitlines()
    return proc.returncode, lines, out


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _assert_clean_interrupt(rc, lines, out):
    assert rc == 130, lines
    assert lines == ["tmsplan: interrupted; nothing was written."], lines
    assert not out.exists()
    assert _hidden(out.parent) == []


# --------------------------------------------------------------------------- end to end

# (stage, pause, delay): the stage's checkpoint, how long the run sleeps there, and
# how long after reaching it the signal is sent (a delay lands inside the stage's work)
EARLY = [
    ("start", 0.0, 0.0),  # first thing main() does: argument parsing, imports
    ("checked", 0.0, 0.3),  # inside the heavy imports of planning
    ("planning", 0.0, 0.6),  # building the map from the peak table
    ("scalp", 0.0, 0.4),  # inside the scalp surface extraction
    ("staging", 30.0, 0.0),  # the hidden staging folder exists
    ("exports", 0.0, 0.05),  # writing navigator files into the staging folder
]
LATE = [
    ("pictures", 0.0, 0.8),  # inside VTK rendering of the 3D views
    ("scene", 0.0, 0.6),  # inside the interactive-scene export (vtk.js serialisation)
    ("commit", 30.0, 0.0),  # complete, just before it is moved into place
]


@pytest.mark.slow
@pytest.mark.parametrize("stage, pause, delay", EARLY + LATE, ids=[s for s, *_ in EARLY + LATE])
def test_ctrl_c_during_demo(tmp_path, stage, pause, delay):
    rc, lines, out = _interrupt_at(tmp_path, ["demo"], stage, pause=pause, delay=delay)
    _assert_clean_interrupt(rc, lines, out)


def test_ctrl_c_while_starting(tmp_path):
    rc, lines, out = _interrupt_at(tmp_path, ["plan", *TARGET], "start", pause=30.0)
    _assert_clean_interrupt(rc, lines, out)


@pytest.mark.slow
@pytest.mark.parametrize("stage, pause, delay", [("scalp", 30.0, 0.0), ("pictures", 0.0, 1.5)])
def test_ctrl_c_during_plan_from_coordinates(tmp_path, stage, pause, delay):
    rc, lines, out = _interrupt_at(tmp_path, ["plan", *TARGET], stage, pause=pause, delay=delay)
    _assert_clean_interrupt(rc, lines, out)


@pytest.mark.slow
def test_ctrl_c_after_the_plan_was_written_says_so(tmp_path):
    args = ["plan", *TARGET, "--formats", "csv", "--no-report"]
    rc, lines, out = _interrupt_at(tmp_path, args, "done", pause=30.0)
    assert rc == 130
    assert len(lines) == 1 and lines[0].startswith("tmsplan: interrupted; only")
    assert str(out) in lines[0]
    assert (out / "target.json").is_file()  # complete, and said to be
    assert _hidden(tmp_path) == []


@pytest.mark.slow
def test_kill_mid_write_then_rerun_leaves_nothing_hidden(tmp_path):
    out = tmp_path / "plan"
    flag = tmp_path / "reached"
    proc = _start(["plan", *TARGET, "--out", str(out)], tmp_path, f"pictures 30 {flag}")
    _wait_for(flag, proc)
    proc.kill()  # SIGKILL: no clean-up of any kind runs
    proc.communicate()
    left = _hidden(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".plan.staging.{proc.pid}@")
    assert any((tmp_path / left[0]).iterdir())  # it holds navigator files

    rerun = _start(
        ["plan", *TARGET, "--formats", "csv", "--no-report", "--out", str(out)], tmp_path
    )
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    notes = [line for line in err.splitlines() if "killed half-way" in line]
    assert len(notes) == 1 and f"pid {proc.pid}" in notes[0] and left[0] in notes[0]
    assert notes[0].startswith("tmsplan: warning:")
    assert _hidden(tmp_path) == []
    assert (out / "target.json").is_file()


# --------------------------------------------------------------------------- in process


@pytest.fixture
def handler():
    """tmsplan's SIGINT handler installed as the CLI does, removed afterwards."""
    interrupts.install()
    try:
        yield
    finally:
        interrupts.uninstall()


def _swallowed_interrupt() -> None:
    """What a library does that catches KeyboardInterrupt in a callback and goes on."""
    try:
        interrupts.handler(signal.SIGINT, None)
    except KeyboardInterrupt:
        pass


def test_a_swallowed_interrupt_stops_the_commit(tmp_path, handler):
    out = tmp_path / "plan"
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(out) as staging:
            (staging / "target.json").write_text("{}")
            _swallowed_interrupt()  # the run goes on, as if nothing happened
            (staging / "more.txt").write_text("more")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_during_the_commit_is_raised_after_it(tmp_path, handler, monkeypatch):
    out = tmp_path / "plan"
    real_replace = os.replace

    def replace_then_interrupt(src, dst):
        real_replace(src, dst)
        interrupts.handler(signal.SIGINT, None)  # recorded only: inside a deferred section

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(out) as staging:
            (staging / "target.json").write_text("{}")
    monkeypatch.undo()
    assert (out / "target.json").is_file()  # moved in whole; the interrupt came after
    assert interrupts.written() == [out.resolve()]
    assert _hidden(tmp_path) == []


def test_an_interrupt_in_a_callback_from_c_is_quiet_and_kept(capfd, handler):
    import ctypes

    callback = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: interrupts.handler(signal.SIGINT, None))
    callback()  # Python can only report the KeyboardInterrupt as "Exception ignored"
    assert capfd.readouterr().err == ""
    assert interrupts.received() == 1
    with pytest.raises(KeyboardInterrupt):
        interrupts.checkpoint("next")


@pytest.mark.slow
def test_swallowed_interrupt_in_cli_exits_130(tmp_path, capsys, monkeypatch):
    """An interrupt a library swallows during planning still ends the run with 130."""
    import tmsplan.pipeline.plan

    real = tmsplan.pipeline.plan.plan_target

    def plan_and_swallow(*args, **kwargs):
        plan = real(*args, **kwargs)
        _swallowed_interrupt()
        return plan

    monkeypatch.setattr(tmsplan.pipeline.plan, "plan_target", plan_and_swallow)
    from tmsplan.cli import main

    out = tmp_path / "plan"
    code = main(["plan", *TARGET, "--no-report", "--formats", "csv", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130
    assert err == "tmsplan: interrupted; nothing was written.\n"
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_dead_run_are_removed_and_a_live_run_is_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    host = _host_tag()
    stale_dir = tmp_path / f".plan.staging.{dead.pid}@{host}.abc123"
    stale_dir.mkdir()
    (stale_dir / "InstrumentMarker.xml").write_text("<x/>")
    stale_tmp = tmp_path / f".table.csv.{dead.pid}@{host}.x1y2z3.tmp"
    stale_tmp.write_text("half")
    live = tmp_path / f".other.staging.{os.getppid()}@{host}.def456"  # a live process
    live.mkdir()
    legacy = tmp_path / ".old.staging.q1w2e3r4"  # no owner recorded: never touched
    legacy.mkdir()
    elsewhere = tmp_path / f".x.staging.{dead.pid}@another-host.zz99"  # other machine
    elsewhere.mkdir()
    with pytest.warns(TmsplanWarning, match=f"killed half-way \\(pid {dead.pid}\\)") as caught:
        notes = remove_dead_leftovers(tmp_path)
    assert len(caught) == 1 and len(notes) == 2
    assert _hidden(tmp_path) == sorted([live.name, legacy.name, elsewhere.name])


def test_a_folder_moved_aside_by_a_killed_force_run_is_restored(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / f".plan.old.{dead.pid}@{_host_tag()}.abc123"
    (aside / "previous").mkdir(parents=True)
    (aside / "previous" / "target.json").write_text("{}")
    with pytest.warns(TmsplanWarning, match="restored 'plan'"):
        remove_dead_leftovers(tmp_path)
    assert (tmp_path / "plan" / "target.json").is_file()
    assert _hidden(tmp_path) == []


def test_a_file_set_killed_mid_force_loses_no_file(tmp_path):
    """SIGKILL between moving a file's previous version aside and placing the new one: the
    next run puts the previous version back; files already replaced keep their new version."""
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"old {name}")
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "import tmsplan.io.outputs as out\n"
        "real = out._commit\n"
        "def commit(tmp, path, *, overwrite):\n"
        "    if path.name == 'b.txt':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)  # b.txt is aside, not yet replaced\n"
        "    real(tmp, path, overwrite=overwrite)\n"
        "out._commit = commit\n"
        "folder = Path(sys.argv[1])\n"
        "out.write_files([(folder / n, 'new ' + n) for n in ('a.txt', 'b.txt', 'c.txt')],\n"
        "                overwrite=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True)
    assert done.returncode == -signal.SIGKILL
    assert not (tmp_path / "b.txt").exists()  # the kill left it aside, hidden
    with pytest.warns(TmsplanWarning, match="restored 'b.txt'"):
        remove_dead_leftovers(tmp_path)
    assert (tmp_path / "a.txt").read_text() == "new a.txt"
    assert (tmp_path / "b.txt").read_text() == "old b.txt"
    assert (tmp_path / "c.txt").read_text() == "old c.txt"
    assert _hidden(tmp_path) == []


def test_a_previous_version_whose_place_was_taken_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "a.txt").write_text("new")
    (tmp_path / f".a.txt.old.{dead.pid}@{_host_tag()}.q1w2e3r4").write_text("old")
    with pytest.warns(TmsplanWarning, match="removed its unfinished"):
        remove_dead_leftovers(tmp_path)
    assert (tmp_path / "a.txt").read_text() == "new"
    assert _hidden(tmp_path) == []


@pytest.mark.slow
def test_a_ctrl_c_while_vtk_loads_waits_until_it_has_loaded(tmp_path):
    """A SIGINT that lands while a VTK extension module initialises crashed the run (SIGSEGV
    in about 1 of 8 interrupts during the pictures): the modules now load with the interrupt
    held back, and it is raised once they are in place."""
    script = (
        "import importlib.abc, os, signal, sys\n"
        "from tmsplan.io import interrupts\n"
        "interrupts.install()\n"
        "class CtrlC(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'vtkmodules':\n"
        "            os.kill(os.getpid(), signal.SIGINT)  # as VTK starts loading\n"
        "        return None\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        "from tmsplan.render._vtk import _VTK_MODULES, pyvista\n"
        "try:\n"
        "    pyvista()\n"
        "except KeyboardInterrupt:\n"
        "    loaded = sum(name in sys.modules for name in _VTK_MODULES)\n"
        "    print('interrupted', loaded, len(_VTK_MODULES), interrupts.received())\n"
        "else:\n"
        "    print('not interrupted')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert words[0] == "interrupted", done.stdout
    assert int(words[1]) == int(words[2]) and int(words[3]) == 1, done.stdout


def test_temporary_files_name_their_process(tmp_path, monkeypatch):
    names = []
    real = os.fdopen

    def spy(fd, *args, **kwargs):
        names.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd, *args, **kwargs)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc")
    monkeypatch.setattr(os, "fdopen", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_text(tmp_path / "a.txt", "x")
    assert Path(names[0]).name.startswith(f".a.txt.{os.getpid()}@")


def _host_tag() -> str:
    from tmsplan.io.outputs import _host

    return _host()


def test_an_error_after_a_swallowed_interrupt_is_an_interrupt(tmp_path, capsys, monkeypatch):
    """A library that swallowed the interrupt may then fail on its broken result."""
    import tmsplan.pipeline.plan

    def swallow_then_fail(*args, **kwargs):
        _swallowed_interrupt()
        raise IndexError("index 0 is out of bounds for axis 0 with size 0")

    monkeypatch.setattr(tmsplan.pipeline.plan, "plan_target", swallow_then_fail)
    from tmsplan.cli import main

    code = main(["plan", *TARGET, "--out", str(tmp_path / "plan")])
    assert code == 130
    assert capsys.readouterr().err == "tmsplan: interrupted; nothing was written.\n"
