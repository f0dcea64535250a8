#!/usr/bin/env python3
"""Set up the project's virtual environment and run the main job or the tests.

Needs nothing but python3:

    python3 dev.py demo     # set up .venv, then run the end-to-end deploy pipeline on the embedded default
    python3 dev.py test     # set up .venv, then run the test suite
    python3 dev.py setup    # only set up .venv

Set-up is idempotent: a stamp file records the hash of the requirement files, so a second call
installs nothing unless they changed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("OFA_DEPLOY_VENV", ROOT / ".venv"))
CONSTRAINTS = ROOT / "requirements" / "constraints-cpu.txt"
STAMP = VENV / ".ofa-deploy-setup"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", CONSTRAINTS, Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _run(*cmd: str | os.PathLike) -> None:
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def setup() -> Path:
    """Create `.venv` and install the project with its test extras (CPU torch pinned)."""
    python = _venv_python()
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text().strip() == _requirements_digest():
        return python
    pip = (python, "-m", "pip", "install", "--disable-pip-version-check", "-q")
    _run(*pip, "-U", "pip")
    _run(*pip, "-c", CONSTRAINTS, "torch==2.13.0")
    _run(*pip, "-c", CONSTRAINTS, "-e", ".[tvm,data,ray,test]")
    # The reference OFA package, for parity tests and benchmarks only; its own pins are ancient.
    _run(*pip, "--no-deps", "ofa==0.1.0.post202307202001")
    STAMP.write_text(_requirements_digest())
    return python


def try_install_sshd() -> None:
    """The ssh-runner tests need a real sshd; install it when root on an apt system (soft: they skip without)."""
    import shutil

    if Path("/usr/sbin/sshd").exists() or os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "openssh-server", "openssh-client"]):
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            print("dev.py: could not install openssh-server; the ssh-runner tests will be skipped", file=sys.stderr)
            return


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"setup", "demo", "test"}:
        print(__doc__, file=sys.stderr)
        return 2
    python = setup()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "demo":
        return subprocess.run([str(python), "-m", "ofa_deploy", "demo", *rest], cwd=ROOT).returncode
    try_install_sshd()
    return subprocess.run([str(python), "-m", "pytest", *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
