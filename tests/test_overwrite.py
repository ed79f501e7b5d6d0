"""Destructive writes: an overwrite replaces only a folder the workbench wrote (its marker), never an app root or a
run folder; a killed export leaves no temporary folder (SIGTERM is handled); a killed process's leftovers are
swept. Real files, a real export subprocess and a real signal."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PY, ROOT
from workbench.core.files import MARKER, atomic_dir, check_replaceable, sweep_stale


def _fill(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "file.txt").write_text(text)


def test_replace_needs_the_workbench_marker(tmp_path):
    foreign = tmp_path / "foreign"
    _fill(foreign, "a user's own")
    with pytest.raises(FileExistsError, match="not written by the workbench"):
        with atomic_dir(foreign, replace=True) as tmp:
            (tmp / "new.txt").write_text("new")
    assert (foreign / "file.txt").read_text() == "a user's own" and not (foreign / "new.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["foreign"]  # no temporary left

    ours = tmp_path / "ours"
    with atomic_dir(ours) as tmp:
        (tmp / "v1.txt").write_text("1")
    assert (ours / MARKER).is_file()
    with atomic_dir(ours, replace=True) as tmp:
        (tmp / "v2.txt").write_text("2")
    assert (ours / "v2.txt").is_file() and not (ours / "v1.txt").exists()


def test_roots_and_run_folders_are_never_replaced(tmp_path):
    root = tmp_path / "outputs"
    _fill(root, "x")
    (root / MARKER).write_text("")
    with pytest.raises(FileExistsError, match="app's own folders"):
        check_replaceable(root, protected=[root])
    parent = tmp_path / "parent"
    (parent / "run").mkdir(parents=True)
    (parent / "run" / "status.json").write_text("{}")
    (parent / MARKER).write_text("")
    with pytest.raises(FileExistsError, match="holds a run folder"):
        check_replaceable(parent)
    assert (parent / "run" / "status.json").is_file()


def test_a_previous_export_stays_when_the_new_one_fails(tmp_path):
    out = tmp_path / "export"
    with atomic_dir(out) as tmp:
        (tmp / "model.gguf").write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_dir(out, replace=True) as tmp:
            (tmp / "model.gguf").write_text("half")
            raise RuntimeError("the check failed")
    assert (out / "model.gguf").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


@pytest.mark.slow
def test_sigterm_of_an_export_worker_removes_its_temporary_folder(lora_run, tmp_path):
    out = tmp_path / "exported"
    proc = subprocess.Popen([PY, "-m", "workbench", "export", "--run", str(lora_run.run_dir), "--out", str(out),
                             "--format", "merged", "--no-check"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob(".exported.tmp-*")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the export never made its temporary folder"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    assert code != 0
    assert not list(tmp_path.glob(".exported*")), list(tmp_path.iterdir())
    assert not out.exists()


def test_sweep_removes_only_dead_processes_leftovers(tmp_path):
    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / "run" / f".export.tmp-{dead}-abc"
    live = tmp_path / "run" / f".export.tmp-{os.getpid()}-def"
    old = tmp_path / f".merged.old-{dead}-123"
    for p in (stale, live, old):
        _fill(p, "x")
    keep = tmp_path / "run" / "export"
    _fill(keep, "keep")
    removed = sweep_stale(tmp_path)
    assert sorted(removed) == sorted([stale, old])
    assert live.is_dir() and keep.is_dir()
