"""The one resumable JSON-lines store (`ofa_deploy.store`): format, old files, options, torn writes, SIGKILL."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ofa_deploy.errors import ConfigError
from ofa_deploy.predictors.dataset import KIND, MATCH_KEYS, RESUME_HINT, load_accuracy_dataset
from ofa_deploy.store import JsonlStore, read_jsonl

REPO = Path(__file__).resolve().parents[2]

# Files written by the previous version, byte for byte (its JsonlStore, then importable as profiling.store.JsonlStore, and predictors.dataset._Store).
OLD_LUT_STORE = (b'{"header": {"job": "lut-build", "space": "tiny", "timer": {"repeats": 3}}}\n'
                 b'{"id":"L0","round":0,"seq":0,"ms":1.25}\n'
                 b'{"id":"anchor","round":0,"seq":1,"ms":0.5,"note":"na\\u00efve \\u00b5s"}\n')
OLD_LUT_HEADER = {"job": "lut-build", "space": "tiny", "timer": {"repeats": 3}}
OLD_DATASET = (b'{"kind":"ofa_deploy.accuracy_dataset","schema_version":1,"seed":3,"calibration_size":64}\n'
               b'{"config":"r16-d2,2-e3,3,3,3-k3,3,3,3","resolution":16,"top1":0.5}\n')
OLD_DATASET_HEADER = {"kind": KIND, "schema_version": 1, "seed": 3, "calibration_size": 64}

HEADER = {"job": "x", "v": 1}


def _records(n: int) -> list[dict]:
    return [{"id": f"item-{i}", "ms": i + 0.5, "note": "naïve µs" if i % 2 else "plain"} for i in range(n)]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines()]


def test_new_file_is_the_plain_header_then_one_compact_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    store = JsonlStore(path, HEADER)
    for r in _records(3):
        store.append(r)
    raw = path.read_bytes()
    assert raw.startswith(b'{"job":"x","v":1}\n') and raw.endswith(b"\n") and raw.isascii()
    assert _lines(path) == [HEADER, *_records(3)]
    assert read_jsonl(path).header == HEADER and read_jsonl(path).records == _records(3)
    assert [p.name for p in tmp_path.iterdir()] == ["s.jsonl"]  # no temp file left by the atomic header write


def test_old_lut_store_resumes_and_keeps_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "lut.json.measurements.jsonl"
    path.write_bytes(OLD_LUT_STORE)
    store = JsonlStore(path, dict(OLD_LUT_HEADER), resume=True)
    assert [r["id"] for r in store] == ["L0", "anchor"] and store.records[1]["note"] == "naïve µs"
    store.append({"id": "L1", "round": 0, "seq": 2, "ms": 2.0})
    assert path.read_bytes() == OLD_LUT_STORE + b'{"id":"L1","round":0,"seq":2,"ms":2.0}\n'
    assert [r["id"] for r in JsonlStore(path, dict(OLD_LUT_HEADER))] == ["L0", "anchor", "L1"]
    with pytest.raises(ConfigError, match=r"different job \(timer differ\)"):
        JsonlStore(path, {**OLD_LUT_HEADER, "timer": {"repeats": 5}})


def test_old_accuracy_dataset_loads_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "acc.jsonl"
    path.write_bytes(OLD_DATASET)
    data = load_accuracy_dataset(path)
    assert data.header == OLD_DATASET_HEADER and data.accuracies.tolist() == [0.5]
    assert [c.to_string() for c in data.configs] == ["r16-d2,2-k3,3,3,3-e3,3,3,3"]
    header = {**OLD_DATASET_HEADER, "n_subnets": 9}  # n_subnets may grow on resume (not a match key)
    store = JsonlStore(path, header, resume=True, overwrite=False, match=MATCH_KEYS, what="accuracy dataset",
                       hint=RESUME_HINT)
    assert len(store) == 1
    store.append({"config": "r16-d2,2-e3,3,3,3-k3,3,3,3", "resolution": 24, "top1": 0.25})
    assert load_accuracy_dataset(path).accuracies.tolist() == [0.5, 0.25]
    assert path.read_bytes().startswith(OLD_DATASET)


def _store_with_tail(tmp_path: Path, last: bytes) -> tuple[Path, int]:
    """A store of 4 records written by JsonlStore, then `last` appended raw; returns (path, where `last` starts)."""
    path = tmp_path / "s.jsonl"
    store = JsonlStore(path, HEADER)
    for r in _records(4):
        store.append(r)
    start = path.stat().st_size
    with path.open("ab") as fh:
        fh.write(last)
    return path, start


# The last record as a UTF-8 writer would put it (raw multi-byte characters): the cuts below fall everywhere in it,
# inside "é" (2 bytes), "µ" (2 bytes) and "💥" (4 bytes) included.
LAST = {"id": "item-4", "ms": 4.5, "note": "é µ 💥 end"}
LAST_LINE = (json.dumps(LAST, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
MULTIBYTE_CUTS = [i for i in range(1, len(LAST_LINE)) if (LAST_LINE[i] & 0xC0) == 0x80]  # continuation bytes


def test_the_cut_offsets_do_fall_inside_multibyte_characters() -> None:
    assert len(MULTIBYTE_CUTS) == 1 + 1 + 3  # é, µ, 💥: every offset inside a character is a torn point below
    with pytest.raises(UnicodeDecodeError):
        LAST_LINE[:MULTIBYTE_CUTS[-1]].decode("utf-8")


@pytest.mark.parametrize("cut", range(1, len(LAST_LINE)))  # every byte offset inside the last record
def test_torn_last_record_is_cut_and_the_next_append_starts_a_line(tmp_path: Path, cut: int,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path, start = _store_with_tail(tmp_path, LAST_LINE[:cut])  # killed after `cut` bytes of the last line
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="ofa_deploy.store"):
        resumed = JsonlStore(path, HEADER, resume=True)
    assert resumed.records == _records(4)  # every complete record, the partial one gone
    assert path.read_bytes() == before[:start]  # the file itself was cut back to its last complete line
    assert "cut the partial last line" in caplog.text and f"({cut} bytes)" in caplog.text
    resumed.append(LAST)
    assert path.read_bytes().endswith(b"\n" + json.dumps(LAST, separators=(",", ":")).encode() + b"\n")
    again = JsonlStore(path, HEADER, resume=True)
    assert again.records == [*_records(4), LAST]
    assert _lines(path) == [HEADER, *_records(4), LAST]  # every line of the file is whole JSON


def test_a_complete_last_record_is_kept(tmp_path: Path) -> None:
    path, _ = _store_with_tail(tmp_path, LAST_LINE)  # a UTF-8 writer's complete line is a readable record
    assert JsonlStore(path, HEADER).records == [*_records(4), LAST]


def test_reading_only_ignores_a_torn_tail_without_touching_the_file(tmp_path: Path) -> None:
    path, start = _store_with_tail(tmp_path, LAST_LINE[:MULTIBYTE_CUTS[0]])
    before = path.read_bytes()
    contents = read_jsonl(path)
    assert contents.records == _records(4) and contents.torn and contents.complete == start
    assert path.read_bytes() == before


def test_unreadable_complete_lines_are_skipped_with_a_warning(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    path, _ = _store_with_tail(tmp_path, b'not json\n[1, 2]\n\xff\xfe bytes\n\n{"id":"item-9","ms":9.0}\n')
    with caplog.at_level(logging.WARNING, logger="ofa_deploy.store"):
        store = JsonlStore(path, HEADER)
    assert [r["id"] for r in store] == [*(r["id"] for r in _records(4)), "item-9"]
    assert [m for m in caplog.messages if "skipping unreadable line" in m] and "line 6" in caplog.text
    assert "line 7" in caplog.text and "line 8" in caplog.text  # not JSON, not an object, not UTF-8


def test_header_mismatch_names_the_keys_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path, _ = _store_with_tail(tmp_path, b'{"id":"torn')
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"different job \(job, v differ\); delete it, or start over") as err:
        JsonlStore(path, {"job": "y", "v": 2})
    assert str(path) in str(err.value)
    assert path.read_bytes() == before  # not this job's file: its torn tail is not ours to cut
    assert len(JsonlStore(path, {"job": "x", "v": 2, "extra": 1}, match=("job",))) == 4  # only `match` compared
    with pytest.raises(ConfigError, match=r"\(extra, v differ\)"):
        JsonlStore(path, {"job": "x", "v": 2, "extra": 1})  # default: every key of both headers


def test_not_resuming_starts_over_or_refuses(tmp_path: Path) -> None:
    path, _ = _store_with_tail(tmp_path, b"")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists and resuming is off; keep it"):
        JsonlStore(path, HEADER, resume=False, overwrite=False, hint="keep it")
    assert path.read_bytes() == before  # refused: nothing lost
    fresh = JsonlStore(path, {"job": "x", "v": 2}, resume=False)  # overwrite=True: start over
    assert len(fresh) == 0 and path.read_bytes() == b'{"job":"x","v":2}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl"]
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    JsonlStore(empty, HEADER, resume=False, overwrite=False)  # an empty file holds nothing to lose
    assert empty.read_bytes() == b'{"job":"x","v":1}\n'


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"not json\n", "the header line is not valid JSON"),
    (b"[1]\n", "the header line is not a JSON object"),
    (b"\xff\xfe\n", "the header line is not UTF-8"),
    (b'{"job":"x","v":1}', "ends inside its header line"),
])
def test_unusable_files_are_refused_on_resume(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        JsonlStore(path, HEADER, resume=True)
    assert path.read_bytes() == content


def test_special_files_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="FIFO"):
        JsonlStore(fifo, HEADER)
    with pytest.raises(ConfigError, match="is a directory"):
        JsonlStore(tmp_path, HEADER)
    with pytest.raises(ValueError, match="legacy wrapper"):
        JsonlStore(tmp_path / "x.jsonl", {"header": {"job": "x"}})


PAD = "é💥" * 10_000  # ~180 kB per line (escaped, ASCII on disk): a write takes a while, a kill can land inside
KILL_HEADER = {"job": "kill"}
CHILD = textwrap.dedent(f"""
    import sys
    from ofa_deploy.store import JsonlStore
    store = JsonlStore(sys.argv[1], {KILL_HEADER!r}, resume=False)
    i = 0
    while True:
        store.append({{"i": f"{{i:06d}}", "pad": {PAD!r}}})
        i += 1
""")


def _kill_mid_write(path: Path, line: int, header: int, min_lines: int) -> tuple[int, bool]:
    """Start the appending child; SIGKILL it once `min_lines` records are on disk, as soon as the size shows a
    write in progress (or after a few seconds regardless). Returns (file size at the kill, seen mid-write)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=REPO, env=env)
    mid_write = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < header + min_lines * line):
            time.sleep(0.002)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if (path.stat().st_size - header) % line:
                mid_write = True
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return path.stat().st_size, mid_write


def test_a_store_sigkilled_while_appending_reopens_with_every_record_before_the_last(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "killed.jsonl"
    line = len(json.dumps({"i": "000000", "pad": PAD}, separators=(",", ":"))) + 1
    header = len(json.dumps(KILL_HEADER, separators=(",", ":"))) + 1
    size, mid_write = _kill_mid_write(path, line, header, min_lines=10)
    torn = (size - header) % line
    assert not torn or mid_write
    with caplog.at_level(logging.WARNING, logger="ofa_deploy.store"):
        store = JsonlStore(path, KILL_HEADER, resume=True)
    n = len(store)
    assert n >= 10 and [r["i"] for r in store] == [f"{i:06d}" for i in range(n)]  # no gap before the last
    assert all(r["pad"] == PAD for r in store)  # every stored record intact
    assert path.stat().st_size == header + n * line == size - torn  # a torn tail (if any) was cut, nothing else
    assert ("cut the partial last line" in caplog.text) == bool(torn)
    store.append({"i": f"{n:06d}", "pad": ""})
    assert [r["i"] for r in JsonlStore(path, KILL_HEADER)] == [f"{i:06d}" for i in range(n + 1)]
