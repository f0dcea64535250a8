"""Fixtures of the scale-out tests: one local Ray cluster (2 CPU slots) shared by the session, tiny jobs."""
from __future__ import annotations

import os
import sys

import pytest

# Every Ray process of these tests binds and talks on loopback only (Ray's own switch for single-host clusters);
# set before Ray is imported anywhere in the session.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from ofa_deploy.profiling.timing.timer import TimerSettings

FAST = TimerSettings(warmup=1, repeats=3, rounds=2, anchor_every=8, seed=0)
#: Ray's "CPU" resource of the test cluster: scheduling slots Ray counts (two workers at once), not the machine's
#: cores; Ray pins nothing to them, so the tests run alike on 1 core and on 64 (slower on 1)
RAY_CPU_SLOTS = 2


@pytest.fixture(scope="session")
def _ray_shutdown():
    yield
    import ray

    ray.shutdown()


@pytest.fixture
def ray_local(_ray_shutdown):
    """The session's local Ray cluster (started on first use, again after a multi-node test shut it down)."""
    import ray

    from ofa_deploy.scale.ray_executor import worker_runtime_env

    if not ray.is_initialized():
        ray.init(num_cpus=RAY_CPU_SLOTS, include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env=worker_runtime_env(),
                 log_to_driver=False)
    return ray


@pytest.fixture(scope="module")
def fast_protocol(profile):
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings

    return ProtocolSettings.from_profile(profile, repeats=3, warmup=1)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (a free port, a temporary host key, key-only login as the current user)."""
    import getpass
    import os
    import shutil
    import subprocess
    import time

    binary = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if binary is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("sshd/ssh not installed (apt-get install openssh-server openssh-client; dev.py test tries it "
                    "when run as root)")
    if os.geteuid() != 0:
        pytest.skip("sshd for the ssh-runner test must run as root here (it switches to the logged-in user)")
    tmp = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    os.makedirs("/run/sshd", exist_ok=True)
    port = _free_port()
    proc = subprocess.Popen([binary, "-D", "-e", "-p", str(port), "-o", "ListenAddress=127.0.0.1",
                             "-h", str(tmp / "host_key"), "-o", f"AuthorizedKeysFile={tmp / 'authorized_keys'}",
                             "-o", "StrictModes=no", "-o", "UsePAM=no", "-o", "PasswordAuthentication=no",
                             "-o", "PermitRootLogin=prohibit-password", "-o", f"PidFile={tmp / 'sshd.pid'}"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    settings = {"host": "127.0.0.1", "port": port, "user": getpass.getuser(),
                "identity_file": str(tmp / "client_key"), "workdir": str(tmp / "device"),
                "python": sys.executable,
                "ssh_options": ["-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={tmp / 'known_hosts'}",
                                "-o", "LogLevel=ERROR"]}
    while time.time() < deadline:
        ok = subprocess.run(["ssh", "-o", "BatchMode=yes", "-p", str(port), "-i", settings["identity_file"],
                             *settings["ssh_options"], f"{settings['user']}@127.0.0.1", "true"],
                            capture_output=True, timeout=10)
        if ok.returncode == 0:
            break
        if proc.poll() is not None:
            pytest.skip(f"sshd could not start here: {proc.stderr.read()[-500:]}")
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"sshd on 127.0.0.1:{port} did not accept the test key: {ok.stderr.decode()[-500:]}")
    yield {"proc": proc, "settings": settings}
    proc.terminate()
    proc.wait(timeout=10)
