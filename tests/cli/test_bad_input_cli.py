"""Issue 10: every bad input reaches the CLI user as a one-line error (exit 1, or 2 for usage), never a traceback.

Each case is one reproduction from the issue, run as a real `python -m ofa_deploy` subprocess.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

W12 = ("--supernet", "ofa_mbv3_w12")
NOT_UTF8 = bytes(range(128, 256)) + b"\xff\xfe\x00garbage"


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ofa_deploy", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OFA_DEPLOY_PROFILES": "/nonexistent-profile-dir"})


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _profile_without_timing(tmp: Path) -> Path:
    return _write(tmp / "bare.yaml", "name: bare\nbackend: onnxruntime\nintra_op_threads: 1\n")


def _predictor_dir(tmp: Path, edit: Callable[[Path], None]) -> Path:
    """A real saved (untrained) predictor, then damaged by `edit`."""
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import get_encoder
    from ofa_deploy.spaces import get_space

    out = AccuracyPredictor(get_encoder("mobilenet", get_space("ofa_mbv3_w12"))).save(tmp / "pred")
    edit(out)
    return out


def _null_in_space(d: Path) -> None:
    header = json.loads((d / "predictor.json").read_text())
    header["space"]["kernel_sizes"] = [3, None, 7]
    (d / "predictor.json").write_text(json.dumps(header))


def _huge_in_space(d: Path) -> None:
    text = (d / "predictor.json").read_text()
    (d / "predictor.json").write_text(text.replace('"n_classes": 1000', '"n_classes": 1e400'))


def _truncate_weights(d: Path) -> None:
    raw = (d / "weights.pt").read_bytes()
    (d / "weights.pt").write_bytes(raw[: len(raw) // 2])


def _dataset(tmp: Path, *records: dict) -> Path:
    from ofa_deploy.predictors.dataset import KIND

    lines = [json.dumps({"kind": KIND}), *map(json.dumps, records)]
    return _write(tmp / "acc.jsonl", "\n".join(lines) + "\n")


def _store(tmp: Path, content: bytes | None) -> Path:
    """A LUT output path whose measurement store is `content` (None: the store path is a directory)."""
    store = tmp / "lut.json.measurements.jsonl"
    if content is None:
        store.mkdir(parents=True)
    else:
        _write(store, content)
    return tmp / "lut.json"


def _fifo(tmp: Path) -> Path:
    path = tmp / "profile.yaml"
    os.mkfifo(path)
    return path


def _loop(tmp: Path) -> Path:
    (tmp / "a.yaml").symlink_to(tmp / "b.yaml")
    (tmp / "b.yaml").symlink_to(tmp / "a.yaml")
    return tmp / "a.yaml"


# (case id, builder of the argument list from a temp dir, expected text in the error line)
CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("1-nan-in-subnet-string", lambda t: ["macs", *W12, "--subnet", "rnan-d2,2,2,2,2"],
     "'nan' in 'rnan' is not a number"),
    ("1-infinity-in-subnet-json", lambda t: ["macs", *W12, "--subnet", '{"resolution":224,"depths":[Infinity]}'],
     "finite integers"),
    ("1-infinity-json-no-resolution", lambda t: ["macs", *W12, "--subnet", '{"depths":[Infinity]}'], "missing"),
    ("2-long-subnet-string", lambda t: ["macs", *W12, "--subnet", "r224-d" + "2," * 3000 + "2"], "depths needs 5"),
    ("2-long-subnet-garbage", lambda t: ["macs", *W12, "--subnet", "x" * 5000], "cannot parse subnet string"),
    ("4-lut-not-utf8", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--lut",
                                  str(_write(t / "x.json", NOT_UTF8))], "not UTF-8"),
    ("4-net-config-not-utf8", lambda t: ["macs", "--net-config", str(_write(t / "x.json", NOT_UTF8))], "not UTF-8"),
    ("4-profile-not-utf8", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--profile",
                                      str(_write(t / "p.yaml", NOT_UTF8))], "not UTF-8"),
    ("4-ofa-lut-not-utf8", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--ofa-lut",
                                      str(_write(t / "224_lookup_table.yaml", NOT_UTF8))], "not UTF-8"),
    ("4-subnet-file-not-utf8", lambda t: ["macs", *W12, "--subnet", str(_write(t / "s.json", NOT_UTF8))],
     "not UTF-8"),
    ("4-dataset-not-utf8", lambda t: ["accuracy", "train-predictor", "--dataset", str(_write(t / "d.jsonl", NOT_UTF8)),
                                      "--out", str(t / "out")], "not UTF-8"),
    ("4-predictor-json-not-utf8", lambda t: ["accuracy", "predict", "--subnet", "max", "--predictor", str(
        _predictor_dir(t, lambda d: _write(d / "predictor.json", NOT_UTF8)))], "not UTF-8"),
    ("4-store-not-utf8", lambda t: ["profile", "build", "--profile", "ort-cpu-1t", *W12, "--resolutions", "128",
                                    "--limit", "1", "--resume", "--no-progress", "--out",
                                    str(_store(t, NOT_UTF8 + b"\n"))], "not UTF-8"),
    ("5-garbage-ofa-predictor", lambda t: ["accuracy", "predict", "--subnet", "max", "--kind", "resnet50",
                                           "--ofa-predictor", str(_write(t / "p.pth", NOT_UTF8))],
     "cannot read checkpoint"),
    ("5-truncated-predictor-weights", lambda t: ["accuracy", "predict", "--subnet", "max", "--predictor",
                                                 str(_predictor_dir(t, _truncate_weights))], "cannot read checkpoint"),
    ("6-ofa-lut-bad-key", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--ofa-lut", str(_write(
        t / "224_lookup_table.yaml", "Conv-input:224x224x3-output:112x112x24-bogus:3:\n  mean: 1.0\n"))],
     "unexpected part"),
    ("6-ofa-lut-bad-number", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--ofa-lut", str(_write(
        t / "224_lookup_table.yaml", "expanded_conv-input:112x112x24-output:56x56x32-expand:1e3-kernel:7-stride:2"
        "-idskip:0-se:0-hs:0:\n  mean: 1.0\n"))], "not a non-negative integer"),
    ("6-ofa-lut-list-value", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--ofa-lut", str(_write(
        t / "224_lookup_table.yaml", "Conv-input:224x224x3-output:112x112x24:\n  mean: [1, 2]\n"))], "mean"),
    ("7-profile-directory", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--profile", str(t)],
     "a directory"),
    ("7-profile-symlink-loop", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--profile", str(_loop(t))],
     "loop"),
    ("7-profile-fifo", lambda t: ["predict", "latency", *W12, "--subnet", "max", "--profile", str(_fifo(t))],
     "FIFO"),
    ("8-store-header-not-json", lambda t: ["profile", "build", "--profile", "ort-cpu-1t", *W12, "--resolutions", "128",
                                           "--limit", "1", "--resume", "--no-progress", "--out",
                                           str(_store(t, b"this is not json\n"))], "header line"),
    ("8-store-is-directory", lambda t: ["profile", "build", "--profile", "ort-cpu-1t", *W12, "--resolutions", "128",
                                        "--limit", "1", "--no-progress", "--out", str(_store(t, None))],
     "is a directory"),
    ("9-record-without-top1", lambda t: ["accuracy", "train-predictor", "--out", str(t / "o"), "--dataset",
                                         str(_dataset(t, {"config": "r224-d2,2,2,2,2"}))], "top1"),
    ("9-nan-in-stored-config", lambda t: ["accuracy", "train-predictor", "--out", str(t / "o"), "--dataset",
                                          str(_dataset(t, {"config": "rnan-d2,2,2,2,2", "top1": 0.5}))],
     "is not a number"),
    ("9-null-in-predictor-space", lambda t: ["accuracy", "predict", "--subnet", "max", "--predictor",
                                             str(_predictor_dir(t, _null_in_space))], "kernel_sizes"),
    ("9-huge-in-predictor-space", lambda t: ["accuracy", "predict", "--subnet", "max", "--predictor",
                                             str(_predictor_dir(t, _huge_in_space))], "n_classes"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_one_line_error(case, tmp_path: Path) -> None:
    _, build, expected = case
    result = _run(*build(tmp_path), timeout=60)
    assert result.returncode in (1, 2), (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert expected in result.stderr, result.stderr[-2000:]
    assert result.stderr.startswith(("error: ", "Usage: ")), result.stderr[-2000:]


def test_profile_without_timing_fields_names_the_defaults(tmp_path: Path) -> None:
    """Cause 10: the profile is still usable, but stderr says which timing defaults were filled in."""
    result = _run("predict", "latency", *W12, "--subnet", "max", "--profile", str(_profile_without_timing(tmp_path)))
    assert result.returncode == 1 and "Traceback" not in result.stderr  # no table measured for it: a clean error
    assert "no warmup, repeats, rounds given; using the defaults warmup=10, repeats=50, rounds=3" in result.stderr
