"""Issue 10, causes 11 and 12: what a crash leaves behind is cleaned up or repaired on the next run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from ofa_deploy.export.artifacts import staging_dir
from ofa_deploy.store import JsonlStore

REPO = Path(__file__).resolve().parents[2]


def test_store_starts_a_new_line_after_a_torn_write(tmp_path: Path) -> None:
    """A record appended after resuming a torn store is kept (not glued onto the partial line and lost)."""
    path = tmp_path / "m.jsonl"
    store = JsonlStore(path, {"job": "x"})
    store.append({"id": "a", "ms": 1.0})
    with path.open("a") as fh:
        fh.write('{"id": "b", "m')  # what a SIGKILL in the middle of append() leaves
    resumed = JsonlStore(path, {"job": "x"})
    assert [r["id"] for r in resumed] == ["a"]
    resumed.append({"id": "b", "ms": 2.0})
    again = JsonlStore(path, {"job": "x"})
    assert [r["id"] for r in again] == ["a", "b"]  # nothing to re-measure
    assert path.read_text().splitlines()[1:] == ['{"id":"a","ms":1.0}', '{"id":"b","ms":2.0}']


def _stage_and_wait(out: Path) -> subprocess.Popen:
    """A child process that stages an export of `out` and then waits (to be killed) inside staging_dir."""
    code = textwrap.dedent(f"""
        import sys, time
        from ofa_deploy.export.artifacts import staging_dir
        with staging_dir({str(out)!r}, overwrite=True) as tmp:
            (tmp / "model.onnx").write_bytes(b"half an export")
            print(tmp, flush=True)
            time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    staged = Path(child.stdout.readline().strip())  # type: ignore[union-attr]
    assert staged.is_dir() and staged.parent == out.parent
    return child


def test_next_export_removes_staging_dirs_of_killed_runs_only(tmp_path: Path) -> None:
    out = tmp_path / "model"
    killed = _stage_and_wait(out)
    orphan = Path(next(p for p in tmp_path.iterdir() if p.name.startswith(".model.tmp-")))
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert orphan.is_dir()  # SIGKILL runs no cleanup: this is the leftover of issue 10, cause 11

    running = _stage_and_wait(out)  # a concurrent export that is still alive must keep its staging dir
    try:
        live = {p for p in tmp_path.iterdir() if p.name.startswith(".model.tmp-")} - {orphan}
        with staging_dir(out, overwrite=True) as tmp:
            (tmp / "model.onnx").write_bytes(b"complete")
        assert not orphan.exists()
        assert all(p.is_dir() for p in live) and len(live) == 1
        assert (out / "model.onnx").read_bytes() == b"complete"
    finally:
        running.kill()
        running.wait()
