"""Journey (b): the built wheel, installed without -e into a fresh venv, has its profiles, tables and on-device
script, and writes nothing inside the installed package.

The venv gets ofa-deploy from the wheel only. Its dependencies (torch, onnxruntime, ...) are the ones already
installed for the tests, made visible through a .pth file that points at a directory of links to them (the
test environment's own ofa_deploy is left out), so nothing is downloaded: pip runs with --no-index and would
fail if a dependency were missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", ".venv",
                                                             "dist", ".pytest_cache"))
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist",
                  f"{src}{os.sep}"])
    assert built.returncode == 0, built.stderr
    wheel = next((root / "dist").glob("ofa_deploy-*.whl"))
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert made.returncode == 0, made.stderr
    deps = root / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("ofa_deploy", "__editable__", "__pycache__")) or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(purelib) / "ofa_deploy_test_deps.pth").write_text(f"{deps}\n")
    installed = _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "-q", wheel])
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OFA_DEPLOY_PROFILES")}
    env.update(OFA_DEPLOY_CACHE=str(root / "cache"), HOME=str(root / "home"))
    work = root / "work"
    work.mkdir()
    return venv, env, work


def test_wheel_predicts_with_the_packaged_table(wheel_venv):
    venv, env, work = wheel_venv
    where = _run([venv / "bin" / "python", "-c", "import ofa_deploy; print(ofa_deploy.__file__)"], env=env, cwd=work)
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(venv), where  # the wheel's copy, not the source tree
    proc = _run([venv / "bin" / "ofa-deploy", "predict", "latency", "--profile", "ort-cpu-1t", "--supernet",
                 "ofa_mbv3_w12", "--subnet", "max", "--format", "json"], env=env, cwd=work)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["table"]["profile"] == "ort-cpu-1t" and data["table"]["entries"] > 400
    assert data["latency_ms"] > 0 and data["resolution"] == 224
    assert Path(data["table"]["path"]).is_relative_to(package / "hardware_profiles")
    listed = _run([venv / "bin" / "ofa-deploy", "list", "profiles", "--format", "json"], env=env, cwd=work)
    assert listed.returncode == 0, listed.stderr
    assert "ort-cpu-1t" in {p["name"] for p in json.loads(listed.stdout)}


def test_wheel_ships_the_ondevice_script_and_writes_outside_the_package(wheel_venv):
    venv, env, work = wheel_venv
    helped = _run([venv / "bin" / "python", "-m", "ofa_deploy.ondevice", "--help"], env=env, cwd=work)
    assert helped.returncode == 0 and "plan_dir" in helped.stdout, helped.stderr
    code = ("from ofa_deploy.profiling.lut import table_path; import ofa_deploy, pathlib; "
            "p = table_path('ort-cpu-1t', 'ofa_mbv3_w12'); "
            "print(p); print(p.is_relative_to(pathlib.Path(ofa_deploy.__file__).parent))")
    out = _run([venv / "bin" / "python", "-c", code], env=env, cwd=work).stdout.split()
    assert out[0].startswith(env["OFA_DEPLOY_CACHE"]) and out[1] == "False"
