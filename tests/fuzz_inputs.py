"""Input fuzzing shared by the default-suite property tests and `benchmarks/fuzz_inputs.py`.

Every target feeds one drawn input through a public entry point and classifies what happened:

* ``ok``: accepted, and the independent check of the result passed;
* ``typed``: rejected with an `OfaDeployError` (the only acceptable failure);
* ``untyped``: any other exception (a bug: the user would see a traceback);
* ``hang``: no answer within `HANG_SECONDS` (a bug: e.g. a FIFO opened for reading);
* ``silent``: an input made invalid on purpose was accepted (a bug).
"""
from __future__ import annotations

import json
import math
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ofa_deploy.errors import OfaDeployError

HANG_SECONDS = 5.0
SPACES = ("ofa_mbv3_w12", "ofa_proxyless_w13", "ofa_resnet50")

# Values that make any numeric subnet / table / profile field invalid, whatever the field.
INVALID_NUMBERS: tuple[Any, ...] = (math.nan, math.inf, -math.inf, 10**400, -1, 2.5, 9999, None, "3", True, [], {})
# Values that make any numeric field of the fuzzed files invalid (9999, 2.5 or huge ints can be valid there).
INVALID_FILE_NUMBERS: tuple[Any, ...] = (math.nan, math.inf, -math.inf, -1, None, "3", True, [], {})
# Tokens that make any number of a compact subnet string invalid.
INVALID_TOKENS = ("nan", "inf", "-inf", "1e400", "2.5", "9999", "", "x", "1_0_0_0_0", "\u0661", "9" * 400)
WEIRD_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["x" * 5000, "r224-d" + "2," * 3000 + "2", "\x00", "../" * 50, "{", "[[[[", "max", "min", "r224"])
JSON_SCALARS = (st.none() | st.booleans() | st.integers(-10, 10**6) | st.sampled_from([10**400, -(10**30)])
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)


class Hang(BaseException):
    """Raised by the alarm when a call takes longer than `HANG_SECONDS`."""


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    kind: str  # ok | typed | untyped | hang | silent
    detail: str = ""


def classify(call: Callable[[], Any], *, must_reject: bool, check: Callable[[Any], None] | None = None) -> Outcome:
    """Run `call` and classify it (see the module docstring); `check` verifies an accepted result."""
    try:
        with _alarm(HANG_SECONDS):
            result = call()
    except OfaDeployError as exc:
        return Outcome("typed", str(exc)[:200])
    except Hang:
        return Outcome("hang")
    except Exception as exc:  # noqa: BLE001 - counting untyped errors is the point
        return Outcome("untyped", f"{type(exc).__name__}: {str(exc)[:300]}")
    if must_reject:
        return Outcome("silent", repr(result)[:300])
    if check is not None:
        try:
            check(result)
        except AssertionError as exc:
            return Outcome("silent", f"accepted result failed its check: {exc}")
    return Outcome("ok")


@dataclass
class Tally:
    """Counts of outcomes per target, with the first example of each bad kind."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, target: str, outcome: Outcome, drawn: Any) -> None:
        per = self.counts.setdefault(target, {})
        per[outcome.kind] = per.get(outcome.kind, 0) + 1
        if outcome.kind in ("untyped", "hang", "silent"):
            self.examples.setdefault(f"{target}/{outcome.kind}/{outcome.detail[:60]}",
                                     f"{outcome.detail} <- {repr(drawn)[:300]}")

    def total(self, kind: str | None = None) -> int:
        return sum(n for per in self.counts.values() for k, n in per.items() if kind is None or k == kind)


# ---- spaces and valid starting points -------------------------------------------------------------
@lru_cache(maxsize=None)
def space(name: str) -> Any:
    from ofa_deploy.spaces import get_space

    return get_space(name)


@st.composite
def valid_configs(draw: st.DrawFn) -> tuple[str, Any]:
    """(space name, a valid SubnetConfig of it)."""
    name = draw(st.sampled_from(SPACES))
    sp = space(name)
    genes = np.array([[draw(st.integers(0, int(n) - 1)) for n in sp.gene_sizes()]], dtype=np.int64)
    return name, sp.from_genes(genes)[0]


def _same_subnet(sp: Any, original: Any) -> Callable[[Any], None]:
    def check(cfg: Any) -> None:
        sp.validate(cfg)
        assert sp.from_genes(sp.to_genes([cfg]))[0] == cfg, "gene round trip changed the config"
        if original is not None:
            assert cfg == original, f"{cfg} != {original}"
    return check


# ---- 1. compact subnet strings --------------------------------------------------------------------
@st.composite
def subnet_strings(draw: st.DrawFn) -> tuple[str, str, bool, Any]:
    """(space, text, known invalid, the config it must equal when valid and unmutated)."""
    name, cfg = draw(valid_configs())
    text = cfg.to_string()
    how = draw(st.sampled_from(["none", "token", "token", "drop-part", "dup-part", "insert", "truncate", "random"]))
    if how == "none":
        return name, text, False, cfg
    if how == "token":
        parts = text.split("-")
        i = draw(st.integers(0, len(parts) - 1))
        values = parts[i][1:].split(",")
        j = draw(st.integers(0, len(values) - 1))
        values[j] = draw(st.sampled_from(INVALID_TOKENS))
        parts[i] = parts[i][0] + ",".join(values)
        return name, "-".join(parts), True, None
    if how in ("drop-part", "dup-part"):
        parts = text.split("-")
        i = draw(st.integers(0, len(parts) - 1))
        parts = parts[:i] + parts[i + 1:] if how == "drop-part" else parts[:i + 1] + parts[i:]
        return name, "-".join(parts), True, None
    if how == "insert":
        at = draw(st.integers(0, len(text)))
        return name, text[:at] + draw(WEIRD_TEXT) + text[at:], False, None
    if how == "truncate":
        return name, text[: draw(st.integers(0, len(text)))], False, None
    return name, draw(WEIRD_TEXT), False, None


def check_subnet_string(drawn: tuple[str, str, bool, Any]) -> Outcome:
    from ofa_deploy.cli.common import parse_subnet

    name, text, invalid, original = drawn
    sp = space(name)
    return classify(lambda: parse_subnet(sp, text), must_reject=invalid, check=_same_subnet(sp, original))


# ---- 2./3. JSON dicts (ours and OFA's) ------------------------------------------------------------
def _leaf_paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _leaf_paths(v, prefix + (k,))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _leaf_paths(v, prefix + (i,))]
    return [prefix]


def _all_paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(data, dict):
        out += [p for k, v in data.items() for p in _all_paths(v, prefix + (k,))]
    elif isinstance(data, list):
        out += [p for i, v in enumerate(data) for p in _all_paths(v, prefix + (i,))]
    return out


def _replace(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replace(data[path[0]], path[1:], value)
    return copy


def _delete(data: Any, path: tuple) -> Any:
    if len(path) == 1:
        copy = dict(data) if isinstance(data, dict) else list(data)
        del copy[path[0]]
        return copy
    return _replace(data, path[:1], _delete(data[path[0]], path[1:]))


@st.composite
def mutated_tree(draw: st.DrawFn, base: Any, numeric_only: Callable[[tuple], bool] = lambda p: True,
                 invalid: tuple[Any, ...] = INVALID_NUMBERS) -> tuple[Any, bool]:
    """(a mutation of the JSON-like `base`, whether it is invalid for sure).

    Known-invalid mutations put a value of `INVALID_NUMBERS` into a numeric leaf accepted by `numeric_only`;
    the others replace or delete any subtree, or add a key, with arbitrary JSON (validity unknown).
    """
    numeric = [p for p in _leaf_paths(base) if isinstance(_get(base, p), (int, float)) and not isinstance(
        _get(base, p), bool) and numeric_only(p)]
    how = draw(st.sampled_from(["invalid-number", "invalid-number", "replace", "delete", "add", "none"]))
    if how == "invalid-number" and numeric:
        path = draw(st.sampled_from(numeric))
        return _replace(base, path, draw(st.sampled_from(invalid))), True
    paths = _all_paths(base)
    if how == "replace":
        return _replace(base, draw(st.sampled_from(paths)), draw(JSON_VALUES)), False
    if how == "delete" and len(paths) > 1:
        return _delete(base, draw(st.sampled_from(paths[1:]))), False
    if how == "add" and isinstance(base, dict):
        return {**base, draw(st.text(max_size=8)): draw(JSON_VALUES)}, False
    return base, False


def _get(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def subnet_json(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(space, JSON text of a mutated config dict — ours or OFA's, invalid for sure)."""
    name, cfg = draw(valid_configs())
    base = cfg.to_ofa() if draw(st.booleans()) else cfg.to_dict()
    data, invalid = draw(mutated_tree(base))
    return name, json.dumps(data), invalid


def check_subnet_json(drawn: tuple[str, str, bool]) -> Outcome:
    from ofa_deploy.cli.common import parse_subnet

    name, text, invalid = drawn
    sp = space(name)
    return classify(lambda: parse_subnet(sp, text), must_reject=invalid, check=_same_subnet(sp, None))


@st.composite
def ofa_dicts(draw: st.DrawFn) -> tuple[str, Any, bool]:
    """(space, a mutated OFA arch dict (not JSON-encoded: any Python value), invalid for sure)."""
    name, cfg = draw(valid_configs())
    data, invalid = draw(mutated_tree(cfg.to_ofa()))
    return name, data, invalid


def check_ofa_dict(drawn: tuple[str, Any, bool]) -> Outcome:
    name, data, invalid = drawn
    sp = space(name)
    return classify(lambda: sp.from_ofa(data), must_reject=invalid, check=_same_subnet(sp, None))


# ---- 4. gene arrays ----------------------------------------------------------------------------------
@st.composite
def gene_arrays(draw: st.DrawFn) -> tuple[str, Any, bool]:
    """(space, an array-like of genes, whether it is valid by an independent rule)."""
    name = draw(st.sampled_from(SPACES))
    sizes = space(name).gene_sizes()
    n_rows = draw(st.integers(0, 3))
    n_cols = len(sizes) if draw(st.integers(0, 5)) else draw(st.integers(0, len(sizes) + 2))
    kind = draw(st.sampled_from(["int", "int", "float", "bool", "object", "list"]))
    lo, hi = -3, int(sizes.max()) + 2
    if kind == "float":
        cells = st.floats(allow_nan=True, allow_infinity=True) | st.integers(lo, hi).map(float)
    elif kind == "bool":
        cells = st.booleans()
    elif kind == "object":
        cells = JSON_SCALARS
    else:
        cells = st.integers(lo, hi) | st.integers(0, 2).map(lambda i: i)
    rows = [[draw(cells) for _ in range(n_cols)] for _ in range(n_rows)]
    if kind == "list":
        genes: Any = rows if draw(st.booleans()) else (rows[0] if rows else [])
    elif kind == "object":
        genes = np.array(rows, dtype=object) if rows else np.empty((0, n_cols), dtype=object)
    else:
        dtype = {"int": np.int64, "float": np.float64, "bool": bool}[kind]
        genes = np.array(rows, dtype=dtype).reshape(n_rows, n_cols)
        if draw(st.integers(0, 4)) == 0 and n_rows:
            genes = genes[0]  # one row, 1-D
    arr = np.asarray(genes, dtype=object)
    arr2 = arr.reshape(1, -1) if arr.ndim == 1 else arr
    valid = (arr2.ndim == 2 and arr2.shape[1] == len(sizes) and kind in ("int", "float", "list")
             and all(_valid_cell(v, int(sizes[j])) for row in arr2 for j, v in enumerate(row)))
    return name, genes, valid


def _valid_cell(v: Any, size: int) -> bool:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    return math.isfinite(float(v)) and float(v).is_integer() and 0 <= v < size


def check_genes(drawn: tuple[str, Any, bool]) -> Outcome:
    name, genes, valid = drawn
    sp = space(name)

    def check(cfgs: list) -> None:
        assert valid, "accepted a gene array the independent rule calls invalid"
        for cfg in cfgs:
            sp.validate(cfg)

    outcome = classify(lambda: sp.from_genes(genes), must_reject=False, check=check)
    if outcome.kind == "typed" and valid:
        return Outcome("untyped", f"refused a valid gene array: {outcome.detail}")  # counted as a bug too
    return outcome


# ---- 5. corrupt files ------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def file_bases() -> dict[str, tuple[bytes, str]]:
    """name -> (valid file content, format "json" | "yaml" | "jsonl" | "bytes")."""
    from ofa_deploy.predictors.dataset import KIND
    from ofa_deploy.profiling.hardware import REPO_PROFILE_DIR
    from ofa_deploy.tables.latency import LatencyStats, LatencyTable

    w12 = space("ofa_mbv3_w12")
    table = LatencyTable()
    for spec in w12.walk_layers(w12.min_config())[:3]:
        table.set(spec, LatencyStats(median=1.0, mean=1.1, std=0.1, p90=1.3, n=10))
    ofa_yaml = ("Conv-input:224x224x3-output:112x112x24:\n  count: 10\n  mean: 1.5\n  std: 0.1\n"
                "expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:7-stride:2-idskip:0-se:0-hs:0:\n"
                "  count: 10\n  mean: 2.5\n  std: 0.2\n")
    dataset = "\n".join([json.dumps({"kind": KIND, "seed": 0}),
                         json.dumps({"config": w12.min_config().to_string(), "resolution": 128, "top1": 0.5}),
                         json.dumps({"config": w12.max_config().to_string(), "resolution": 224, "top1": 0.75})]) + "\n"
    # the first line of LUT measurement stores written by earlier versions (still read; new files: the plain header)
    store = "\n".join([json.dumps({"header": {"job": "x"}}), json.dumps({"id": "a", "ms": 1.0})]) + "\n"
    return {
        "latency_table": (json.dumps(table.to_dict()).encode(), "json"),
        "ofa_yaml": (ofa_yaml.encode(), "yaml"),
        "profile": ((REPO_PROFILE_DIR / "ort-cpu-1t.yaml").read_bytes(), "yaml"),
        "dataset": (dataset.encode(), "jsonl"),
        "store": (store.encode(), "jsonl"),
        "predictor_json": (predictor_dir_bytes()[0], "json"),
        "net_config": (json.dumps(_net_config()).encode(), "json"),
        "subnet_file": (json.dumps(w12.max_config().to_dict()).encode(), "json"),
        "weights": (predictor_dir_bytes()[1], "bytes"),
    }


@lru_cache(maxsize=None)
def predictor_dir_bytes() -> tuple[bytes, bytes]:
    """(predictor.json, weights.pt) of a real saved, untrained predictor for OFA-MBv3 w1.2."""
    from ofa_deploy.predictors.accuracy import AccuracyMLP, AccuracyPredictor
    from ofa_deploy.predictors.encoding import get_encoder

    encoder = get_encoder("mobilenet", space("ofa_mbv3_w12"))
    with tempfile.TemporaryDirectory() as tmp:
        out = AccuracyPredictor(encoder, AccuracyMLP(encoder.n_dim, hidden_size=8, n_layers=1)).save(tmp)
        return (out / "predictor.json").read_bytes(), (out / "weights.pt").read_bytes()


@lru_cache(maxsize=None)
def _net_config() -> dict:
    from ofa_deploy.compat.net_config import subnet_to_net_config
    from ofa_deploy.nn.layers import SubnetModel

    w12 = space("ofa_mbv3_w12")
    return subnet_to_net_config(SubnetModel(w12.walk_layers(w12.min_config())))


def _oracle_paths(name: str) -> Callable[[tuple], bool]:
    """Numeric leaves whose every value in INVALID_NUMBERS must be refused by the reader of file `name`."""
    if name == "latency_table":
        # provenance is free-form (lut.py checks no types); median/p90 may be null (mean/std-only tables)
        return lambda p: len(p) > 1 and p[0] == "entries" and p[-1] not in ("median", "p90")
    if name == "predictor_json":
        return lambda p: p[0] in ("space", "encoder", "model")
    if name == "profile":
        # fields whose default is None (interval_target, min_rounds, ...) accept null: "use the default"
        from ofa_deploy.profiling.hardware import _DEFAULTS

        nullable = {key for key, default in _DEFAULTS.items() if default is None}
        return lambda p: not (len(p) == 1 and p[0] in nullable)
    if name in ("ofa_yaml", "subnet_file"):
        return lambda p: True
    return lambda p: False


@st.composite
def corrupt_files(draw: st.DrawFn) -> tuple[str, bytes | str, bool]:
    """(reader name, file content or a special-file kind, invalid for sure)."""
    name = draw(st.sampled_from(sorted(file_bases())))
    base, fmt = file_bases()[name]
    how = draw(st.sampled_from(["tree", "tree", "tree", "truncate", "flip", "insert", "special"]))
    if how == "special":
        return name, draw(st.sampled_from(["fifo", "dir", "loop", "missing", "long", "empty"])), True
    if how == "tree" and fmt != "bytes":
        lines = base.decode().splitlines()
        if fmt == "jsonl":
            i = draw(st.integers(0, len(lines) - 1))
            line, invalid = draw(mutated_tree(json.loads(lines[i]),
                                              lambda p: name == "dataset" and i > 0 and p == ("top1",),
                                              INVALID_FILE_NUMBERS))
            lines[i] = json.dumps(line)
            return name, ("\n".join(lines) + "\n").encode(), invalid
        import yaml

        data = yaml.safe_load(base) if fmt == "yaml" else json.loads(base)
        data, invalid = draw(mutated_tree(data, _oracle_paths(name), INVALID_FILE_NUMBERS))
        text = yaml.safe_dump(data) if fmt == "yaml" and _yaml_safe(data) else json.dumps(data)
        return name, text.encode(), invalid
    if how == "truncate" or fmt == "bytes" and how == "tree":
        return name, base[: draw(st.integers(0, max(len(base) - 1, 0)))], False
    raw = bytearray(base)
    if how == "flip" and raw:
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return name, bytes(raw), False
    at = draw(st.integers(0, len(raw)))
    return name, bytes(raw[:at]) + draw(st.binary(min_size=1, max_size=40)) + bytes(raw[at:]), False


def _yaml_safe(data: Any) -> bool:
    try:
        import yaml

        yaml.safe_dump(data)
        return True
    except Exception:  # noqa: BLE001 - e.g. NaN keys; fall back to JSON (valid YAML too)
        return False


def _make_file(tmp: Path, name: str, content: bytes | str) -> Path:
    suffix = {"ofa_yaml": "224_lookup_table.yaml", "profile": "profile.yaml", "dataset": "acc.jsonl",
              "store": "store.jsonl", "predictor_json": "predictor.json", "net_config": "x.net.config",
              "subnet_file": "subnet.json", "weights": "weights.pt", "latency_table": "lut.json"}[name]
    path = tmp / suffix
    if name in ("predictor_json", "weights"):
        header, weights = predictor_dir_bytes()
        (tmp / "predictor.json").write_bytes(header)
        (tmp / "weights.pt").write_bytes(weights)
        path.unlink()
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "fifo":
        os.mkfifo(path)
    elif content == "dir":
        path.mkdir()
    elif content == "loop":
        other = tmp / f"other-{suffix}"
        path.symlink_to(other)
        other.symlink_to(path)
    elif content == "long":
        return tmp / ("x" * 5000 + suffix)
    elif content == "empty":
        path.write_bytes(b"")
    return path


def _reader(name: str, path: Path) -> Callable[[], Any]:
    if name == "latency_table":
        from ofa_deploy.tables.latency import LatencyTable

        return lambda: LatencyTable.load(path)
    if name == "ofa_yaml":
        from ofa_deploy.compat.ofa_lut import load_ofa_lut

        return lambda: load_ofa_lut(path, space("ofa_mbv3_w12"))
    if name == "profile":
        from ofa_deploy.profiling.hardware import HardwareProfile

        return lambda: HardwareProfile.load(str(path))
    if name == "dataset":
        from ofa_deploy.predictors.dataset import load_accuracy_dataset

        return lambda: load_accuracy_dataset(path)
    if name == "store":
        from ofa_deploy.store import JsonlStore

        return lambda: JsonlStore(path, {"job": "x"}, resume=True)
    if name in ("predictor_json", "weights"):
        from ofa_deploy.predictors.accuracy import AccuracyPredictor

        return lambda: AccuracyPredictor.load(path.parent)
    if name == "net_config":
        from ofa_deploy.compat.net_config import net_config_to_specs

        return lambda: net_config_to_specs(path, resolution=160)
    if name == "subnet_file":
        from ofa_deploy.cli.common import parse_subnet

        return lambda: parse_subnet(space("ofa_mbv3_w12"), str(path))
    raise AssertionError(name)


def check_file(drawn: tuple[str, bytes | str, bool]) -> Outcome:
    name, content, invalid = drawn
    if name == "store" and content == "missing":
        invalid = False  # a missing store is simply started
    if name == "net_config" and content == "long":
        invalid = False  # a name that is not a file is not a net.config path
    with tempfile.TemporaryDirectory() as tmp:
        return classify(_reader(name, _make_file(Path(tmp), name, content)), must_reject=invalid)


TARGETS: dict[str, tuple[Callable[[], st.SearchStrategy], Callable[[Any], Outcome]]] = {
    "subnet_string": (subnet_strings, check_subnet_string),
    "subnet_json": (subnet_json, check_subnet_json),
    "ofa_dict": (ofa_dicts, check_ofa_dict),
    "genes": (gene_arrays, check_genes),
    "file": (corrupt_files, check_file),
}
