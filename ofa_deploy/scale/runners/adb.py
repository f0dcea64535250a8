"""The `adb` runner: an Android device over adb, timing with a user-provided ``onnxruntime_perf_test`` binary.

On connect it checks ``adb`` and the device (``adb -s SERIAL get-state``) and pushes the binary into `workdir`
(default /data/local/tmp/ofa-deploy). A paired visit pushes the models (once) and runs the binary three times,
anchor, item, anchor, pinned with ``taskset <cpus mask>`` (e.g. ``f0``: the big cores); the value of each run is
the ``Min Latency`` it prints.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.hosts.devices import DeviceUnavailableError
from ofa_deploy.scale.runners.base import DeviceRunner

_LINE = re.compile(r"^\s*(Min|Max|P50|P90|P95|P99|P999) Latency:\s*([0-9.eE+-]+)\s*s\s*$", re.M)
_AVERAGE = re.compile(r"Average inference time cost:\s*([0-9.eE+-]+)\s*ms")
_RUNS = re.compile(r"Total inference requests:\s*(\d+)")
_PROVIDERS = {"CPUExecutionProvider": "cpu", "XNNPACKExecutionProvider": "xnnpack", "NnapiExecutionProvider": "nnapi",
              "QNNExecutionProvider": "qnn", "CUDAExecutionProvider": "cuda"}


def parse_perf_test(text: str) -> dict[str, float]:
    """Latencies (ms) from ``onnxruntime_perf_test`` output: min, max, p50... and the average; ConfigError if
    the text has none (a crashed run prints its error instead)."""
    out = {name.lower() + "_ms": float(value) * 1000.0 for name, value in _LINE.findall(text)}
    avg = _AVERAGE.search(text)
    if avg:
        out["average_ms"] = float(avg.group(1))
    runs = _RUNS.search(text)
    if runs:
        out["runs"] = float(runs.group(1))
    if "min_ms" not in out and "average_ms" not in out:
        raise ConfigError("onnxruntime_perf_test printed no latency (expected 'Min Latency: <s> s' or 'Average "
                          f"inference time cost: <ms> ms'); its output ends with: {text.strip()[-300:]!r}")
    return out


class AdbRunner(DeviceRunner):
    """Settings: perf_test (local path of the binary, required), serial, workdir, cpus (taskset hex mask),
    adb (the adb executable), runs (timed runs per visit; default: the protocol's visit repeats)."""

    def _adb(self) -> list[str]:
        s = self.device.settings
        return [str(s.get("adb", "adb"))] + (["-s", str(s["serial"])] if s.get("serial") else [])

    @property
    def workdir(self) -> str:
        return str(self.device.settings.get("workdir", "/data/local/tmp/ofa-deploy"))

    def perf_test_command(self, model: str) -> list[str]:
        """The adb argv timing one pushed model (`model`: its path on the device)."""
        s, p = self.device.settings, self.profile
        provider = _PROVIDERS.get(str(getattr(p, "execution_provider", None) or "CPUExecutionProvider"), "cpu")
        runs = int(s.get("runs") or self.protocol.repeats)
        level = {"disable": 0, "basic": 1, "extended": 2, "all": 99}[str(getattr(p, "graph_optimization_level", "all"))]
        binary = f"{self.workdir}/onnxruntime_perf_test"
        inner = [binary, "-e", provider, "-x", str(getattr(p, "intra_op_threads", 1)), "-y", "1", "-o", str(level),
                 "-m", "times", "-r", str(runs), "-I", model]
        if s.get("cpus"):
            inner = ["taskset", str(s["cpus"]), *inner]
        return [*self._adb(), "shell", shlex.join(inner)]

    def _run(self, argv: list[str], what: str, timeout: float = 300) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceUnavailableError(f"device {self.device.name}: {what} timed out after {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise DeviceUnavailableError(f"device {self.device.name}: {what} failed (exit {proc.returncode}): "
                                         f"{(proc.stderr or proc.stdout).strip()[-400:]}")
        return proc.stdout

    def connect(self) -> dict[str, Any]:
        adb = str(self.device.settings.get("adb", "adb"))
        if shutil.which(adb) is None:
            raise DeviceUnavailableError(
                f"device {self.device.name}: `{adb}` is not on PATH; install Android platform-tools "
                "(apt-get install adb) or set the device's 'adb' setting to the executable")
        binary = Path(str(self.device.settings["perf_test"])).expanduser()
        if not binary.is_file():
            raise ConfigError(f"device {self.device.name}: perf_test {binary} is not a file; build "
                              "onnxruntime_perf_test for Android (onnxruntime's build.sh --android) and point to it")
        state = self._run([*self._adb(), "get-state"], "asking the device state", timeout=30).strip()
        if state != "device":
            raise DeviceUnavailableError(f"device {self.device.name}: adb reports state {state!r}, expected 'device'; "
                                         "check `adb devices` and the USB debugging authorisation")
        self._run([*self._adb(), "shell", f"mkdir -p {shlex.quote(self.workdir)}"], "creating the work directory")
        self._run([*self._adb(), "push", str(binary), f"{self.workdir}/onnxruntime_perf_test"], "pushing perf_test")
        self._run([*self._adb(), "shell", f"chmod 755 {shlex.quote(self.workdir)}/onnxruntime_perf_test"], "chmod")
        self.pushed: set[str] = set()
        return {"runner": "adb", "serial": self.device.settings.get("serial"), "state": state}

    def _ensure(self, path: Path) -> str:
        remote = f"{self.workdir}/{path.name}"
        if path.name not in self.pushed:
            self._run([*self._adb(), "push", str(path), remote], f"pushing {path.name}")
            self.pushed.add(path.name)
        return remote

    def visit(self, remote_model: str) -> float:
        stats = parse_perf_test(self._run(self.perf_test_command(remote_model), f"timing {remote_model}"))
        return stats.get("min_ms", stats.get("average_ms", 0.0))

    def paired_visit(self, model: Path, shape: Sequence[int], anchor: Path, anchor_shape: Sequence[int]
                     ) -> dict[str, float]:
        item_remote, anchor_remote = self._ensure(Path(model)), self._ensure(Path(anchor))
        before = self.visit(anchor_remote)
        item = self.visit(item_remote)
        after = self.visit(anchor_remote)
        bracket = (before + after) / 2
        return {"item_ms": item, "anchor_ms": bracket, "ratio": item / bracket}
