"""The `ssh` runner: a board with python3 + onnxruntime + numpy (Raspberry Pi, Jetson), reached over ssh.

On connect it checks the device's python and onnxruntime, copies the on-device script
(``ofa_deploy/ondevice.py``, package data) into `workdir` and starts it in ``--serve`` mode over one ssh connection.
Each paired visit copies the models it needs (once, with scp) and sends one JSON request; the JSON answer comes
back on the same channel. A connection that drops raises `DeviceUnavailableError`, so the pool retries the
item on another device.
"""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.profiling.hosts.devices import DeviceUnavailableError
from ofa_deploy.scale.runners.base import DeviceRunner

SCRIPT = Path(__file__).resolve().parents[2] / "ondevice.py"


class SshRunner(DeviceRunner):
    """Settings: host, port (22), user, identity_file, python (python3), workdir (ofa-deploy-device, relative
    to the remote home), ssh_options (extra ``-o`` style arguments), connect_timeout (10 s)."""

    def _target(self) -> str:
        s = self.device.settings
        return f"{s['user']}@{s['host']}" if s.get("user") else str(s["host"])

    def _options(self, port_flag: str) -> list[str]:
        s = self.device.settings
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(s.get('connect_timeout', 10))}",
                port_flag, str(s.get("port", 22))]
        if s.get("identity_file"):
            opts += ["-i", str(Path(str(s["identity_file"])).expanduser())]
        return opts + [str(o) for o in s.get("ssh_options", [])]

    def ssh_command(self, remote: str) -> list[str]:
        """The ssh argv running `remote` (a shell command line) on the device."""
        return ["ssh", *self._options("-p"), self._target(), remote]

    def scp_command(self, local: Path, remote: str) -> list[str]:
        return ["scp", "-q", *self._options("-P"), str(local), f"{self._target()}:{remote}"]

    def _run(self, argv: list[str], what: str, timeout: float = 120) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceUnavailableError(f"device {self.device.name}: {what} timed out after {timeout:.0f} s "
                                         f"({shlex.join(argv[:1] + argv[-2:])})") from None
        if proc.returncode != 0:
            raise DeviceUnavailableError(
                f"device {self.device.name}: {what} failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}. "
                f"Check that `{shlex.join(self.ssh_command('true'))}` works without a password")
        return proc.stdout

    def connect(self) -> dict[str, Any]:
        for tool in ("ssh", "scp"):
            if shutil.which(tool) is None:
                raise DeviceUnavailableError(f"device {self.device.name}: `{tool}` is not installed here; install "
                                             "the OpenSSH client (apt-get install openssh-client)")
        if not SCRIPT.is_file():
            raise ConfigError(f"the on-device script {SCRIPT} is missing; the ssh runner needs a source checkout")
        s = self.device.settings
        self.workdir = str(s.get("workdir", "ofa-deploy-device"))
        python = str(s.get("python", "python3"))
        wd = shlex.quote(self.workdir)
        out = self._run(self.ssh_command(
            f"mkdir -p {wd}/models && ls {wd}/models && {shlex.quote(python)} -c "
            "'import numpy, onnxruntime; print(\"ORT\", onnxruntime.__version__)'"), "connecting")
        lines = out.split()
        if "ORT" not in lines:
            raise DeviceUnavailableError(f"device {self.device.name}: {python} there cannot import onnxruntime and "
                                         "numpy; install them on the device (pip install onnxruntime numpy)")
        self.copied = set(lines[: lines.index("ORT")])
        self._run(self.scp_command(SCRIPT, f"{self.workdir}/ondevice_profile.py"), "copying the on-device script")
        p = self.profile
        args = ["--serve", "--provider", str(getattr(p, "execution_provider", None) or "CPUExecutionProvider"),
                "--threads", str(getattr(p, "intra_op_threads", 1)),
                "--opt-level", str(getattr(p, "graph_optimization_level", "all")),
                "--visit-warmup", str(self.protocol.warmup), "--visit-repeats", str(self.protocol.repeats)]
        remote = f"cd {wd} && exec {shlex.quote(python)} ondevice_profile.py . {shlex.join(args)}"
        self.proc = subprocess.Popen(self.ssh_command(remote), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        hello = self._answer("starting the on-device script")
        return {"runner": "ssh", "target": self._target(), **hello}

    def _answer(self, what: str) -> dict[str, Any]:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.kill()
            err = self.proc.stderr.read()[-400:] if self.proc.stderr else ""
            raise DeviceUnavailableError(f"device {self.device.name}: the connection closed while {what} "
                                         f"(exit {self.proc.wait()}): {err.strip()}")
        return json.loads(line)

    def _ensure(self, path: Path) -> str:
        remote = f"models/{path.name}"
        if path.name not in self.copied:
            self._run(self.scp_command(path, f"{self.workdir}/{remote}"), f"copying {path.name}")
            self.copied.add(path.name)
        return remote

    def paired_visit(self, model: Path, shape: Sequence[int], anchor: Path, anchor_shape: Sequence[int]
                     ) -> dict[str, float]:
        request = {"model": self._ensure(Path(model)), "shape": list(shape), "anchor": self._ensure(Path(anchor)),
                   "anchor_shape": list(anchor_shape)}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise DeviceUnavailableError(f"device {self.device.name}: the ssh connection is gone") from None
        answer = self._answer(f"timing {Path(model).name}")
        if "error" in answer:
            raise ConfigError(f"device {self.device.name} could not time {Path(model).name}: {answer['error']}")
        return {k: float(answer[k]) for k in ("item_ms", "anchor_ms", "ratio")}

    def close(self) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
