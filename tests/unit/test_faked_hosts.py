"""The host-dependent paths, run as other machines: an AMD EPYC, an Intel Xeon named exactly "Intel(R) Xeon(R)
Processor" (the host issue 17 was found on), a 1-core and a 64-core Xeon, an aarch64 board whose process may use
only CPUs 2 and 3, and this machine itself.

The package reads the host in one place, `ofa_deploy.hostinfo.read_host`; each test substitutes that function,
so a host-specific assumption (a vendor, a model name, a core count, CPU 0 or 1 being usable) fails here on every
machine, not only on the other vendor's. Every "other host" value is derived from the (faked) host and checked to
differ from it (`tests.hosts`).
"""
from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ofa_deploy import hostinfo
from ofa_deploy.hostinfo import HostInfo
from tests.hosts import another_core_count, foreign_fingerprint

X86_FLAGS = ("aes", "avx", "avx2", "fma", "sse4_1", "sse4_2")
FAKE_HOSTS = {
    "amd-epyc": HostInfo(cpu_model="AMD EPYC 7B13", cpu_flags=(*X86_FLAGS, "sha_ni"), cores=2, usable_cpus=(0, 1),
                         physical_cores=1, os="Linux", machine="x86_64", node="epyc-vm"),
    "intel-xeon": HostInfo(cpu_model="Intel(R) Xeon(R) Processor", cpu_flags=(*X86_FLAGS, "avx512f"), cores=2,
                           usable_cpus=(0, 1), physical_cores=1, os="Linux", machine="x86_64", node="xeon-vm"),
    "one-core": HostInfo(cpu_model="Intel(R) Xeon(R) CPU @ 2.20GHz", cpu_flags=X86_FLAGS, cores=1, usable_cpus=(0,),
                         physical_cores=1, os="Linux", machine="x86_64", node="tiny"),
    "64-cores": HostInfo(cpu_model="Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", cpu_flags=(*X86_FLAGS, "amx_tile"),
                         cores=64, usable_cpus=tuple(range(64)), physical_cores=32, os="Linux", machine="x86_64",
                         node="big"),
    "arm-pinned": HostInfo(cpu_model="aarch64", cpu_flags=(), cores=4, usable_cpus=(2, 3), physical_cores=4,
                           os="Linux", machine="aarch64", node="board"),
}
HOSTS = [*FAKE_HOSTS, "this-machine"]
#: a small MobileNetV3 space (the deploy test searches, exports and measures it in seconds)
TINY = {"base_widths": (8, 8, 8, 16, 16, 16, 24, 64, 64), "depths": (1, 2), "kernel_sizes": (3, 5),
        "expand_ratios": (2.0, 3.0), "resolutions": (16,), "n_classes": 10}


@pytest.fixture(params=HOSTS)
def host(request, monkeypatch) -> HostInfo:
    """The host every path sees: `read_host` substituted by a fake (or this machine, read once)."""
    info = FAKE_HOSTS.get(request.param) or hostinfo.read_host()
    monkeypatch.setattr(hostinfo, "read_host", lambda *args, **kwargs: info)
    return info


@pytest.fixture(scope="module")
def space():
    from ofa_deploy.spaces import get_space

    return get_space("ofa_mbv3_w10", **TINY)


@pytest.fixture(scope="module")
def profile():
    from ofa_deploy.profiling.hardware import HardwareProfile

    return HardwareProfile.load("ort-cpu-1t")


def units_table(space, host_fp):
    """A table for every layer of `space` (0.01 anchor units per 1M MACs), with fingerprint `host_fp`."""
    from ofa_deploy.profiling.timing.anchor import default_anchor_config
    from ofa_deploy.tables.anchor import AnchorInfo
    from ofa_deploy.profiling.plan import make_plan
    from ofa_deploy.spaces.costs import layer_macs
    from ofa_deploy.tables.latency import LatencyStats, LatencyTable, Provenance

    anchor = AnchorInfo(config=default_anchor_config(space).to_string(), space=space.name, batch_size=1, ms=2.0,
                        visits=10, swing=1.2)
    table = LatencyTable(provenance=Provenance(profile_name="ort-cpu-1t", supernet=space.name, host=dict(host_fp)),
                         anchor=anchor)
    for item in make_plan(space, list(space.resolutions)).items:
        table[item.spec] = LatencyStats.from_samples([0.001 + 0.01 * layer_macs(item.spec) / 1e6] * 3)
    return table


@pytest.fixture
def fingerprints(host, profile) -> SimpleNamespace:
    """This host's fingerprint (`here`), and two of other hosts: another CPU model, another core count."""
    from ofa_deploy.profiling.hosts.fingerprint import backend_fingerprint

    here = backend_fingerprint(profile)
    other_cpu = foreign_fingerprint(here)
    other_cores = {**here, "cores": another_core_count(here["cores"])}
    assert here["cpu_model"] == host.cpu_model and here["cores"] == host.cores
    assert other_cpu["cpu_model"] != host.cpu_model and other_cores["cores"] != host.cores
    return SimpleNamespace(here=here, other_cpu=other_cpu, other_cores=other_cores)


@pytest.fixture
def tables(fingerprints, space, tmp_path) -> SimpleNamespace:
    """Tables of `space` saved with each fingerprint: `own`, `other_cpu`, `other_cores` (paths)."""
    return SimpleNamespace(**{name: units_table(space, getattr(fingerprints, key)).save(tmp_path / f"{name}.json")
                              for name, key in (("own", "here"), ("other_cpu", "other_cpu"),
                                                ("other_cores", "other_cores"))})


def names_both(key: str, table_fp, here_fp) -> str:
    """The regex of how a host check names one differing field (`HostCheck.describe`)."""
    return re.escape(f"{key}: table {table_fp[key]!r}, here {here_fp[key]!r}")


def test_fingerprint_provenance_and_env_describe_the_host(host, profile):
    from ofa_deploy.cli.core import cpu_info
    from ofa_deploy.profiling.builder import make_provenance
    from ofa_deploy.profiling.hosts.fingerprint import backend_fingerprint, host_fingerprint
    from ofa_deploy.profiling.timing.timer import TimerSettings

    fp = host_fingerprint()
    assert (fp["cpu_model"], fp["cores"], fp["os"], fp["machine"]) == (host.cpu_model, host.cores, host.os,
                                                                       host.machine)
    assert fp["cpu_flags_sha256"] == host.flags_sha256 and bool(fp["cpu_flags_sha256"]) == bool(host.cpu_flags)
    assert backend_fingerprint(profile)["cpu_model"] == host.cpu_model
    prov = make_provenance(profile, None, "s", TimerSettings())
    assert prov.host["cpu_model"] == host.cpu_model and prov.host["cores"] == host.cores and prov.device == host.node
    assert cpu_info() == {"model": host.cpu_model, "cores": host.physical_cores, "threads": host.cores,
                          "available_threads": len(host.usable_cpus)}


def test_a_table_is_valid_on_its_own_host_and_foreign_elsewhere(host, profile, fingerprints, tables):
    from ofa_deploy.profiling.hosts.fingerprint import check_table_host
    from ofa_deploy.tables.latency import LatencyTable

    fp = fingerprints
    assert check_table_host(LatencyTable.load(tables.own), profile).ok
    cpu = check_table_host(LatencyTable.load(tables.other_cpu), profile)
    assert not cpu.ok and cpu.differences == ("cpu_model",)
    assert re.search(names_both("cpu_model", fp.other_cpu, fp.here), cpu.describe())
    cores = check_table_host(LatencyTable.load(tables.other_cores), profile)
    assert not cores.ok and cores.differences == ("cores",)
    assert re.search(names_both("cores", fp.other_cores, fp.here), cores.describe())


def host_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ofa_deploy.profiling.hosts.fingerprint"]


def test_search_and_predict_warn_on_a_foreign_table(host, space, fingerprints, tables, tmp_path, caplog):
    from ofa_deploy.cli.main import cli
    from ofa_deploy.search.inputs import load_latency
    from ofa_deploy.spaces import get_space

    with caplog.at_level(logging.WARNING, logger="ofa_deploy.profiling.hosts.fingerprint"):
        load_latency(space, luts=[tables.own])  # what `search --lut` loads
        assert host_warnings(caplog) == []  # this host's table: no warning
        load_latency(space, luts=[tables.other_cpu])
    (warning,) = host_warnings(caplog)
    assert "measured on another host" in warning and re.search(names_both("cpu_model", fingerprints.other_cpu,
                                                                            fingerprints.here), warning)
    caplog.clear()
    w10 = units_table(get_space("ofa_mbv3_w10", resolutions=(160,)), fingerprints.other_cpu).save(tmp_path / "w10.json")
    with caplog.at_level(logging.WARNING, logger="ofa_deploy.profiling.hosts.fingerprint"):
        result = CliRunner().invoke(cli, ["predict", "latency", "--supernet", "ofa_mbv3_w10", "--subnet", "min", "-r",
                                          "160", "--lut", str(w10)])
    assert result.exit_code == 0, result.output  # a warning, not a refusal
    (warning,) = host_warnings(caplog)
    assert "measured on another host" in warning and host.cpu_model in warning


def test_profile_check_says_valid_here_or_names_both_hosts(host, tables):
    from ofa_deploy.cli.main import cli

    ok = CliRunner().invoke(cli, ["profile", "check", str(tables.own)])
    assert ok.exit_code == 0 and ok.stdout.startswith("valid here"), ok.output
    no = CliRunner().invoke(cli, ["profile", "check", str(tables.other_cpu), "--format", "json"])
    assert no.exit_code == 1, no.output
    data = json.loads(no.stdout)
    assert data["ok"] is False and data["differences"] == ["cpu_model"]
    assert data["here"]["cpu_model"] == host.cpu_model != data["table"]["cpu_model"]


def test_deploy_refuses_a_foreign_table_unless_allowed(host, fingerprints, tables, tmp_path):
    import torch

    from ofa_deploy.errors import ForeignTableError
    from ofa_deploy.pipeline import DeployRequest, deploy
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.supernets import create_supernet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        supernet = create_supernet("ofa_mbv3_w10", **TINY).eval()
        predictor = AccuracyPredictor(default_encoder(supernet.space))  # untrained: the path does not care
    base = dict(profile="ort-cpu-1t", generations=2, population=8, pareto_generations=0, n_checks=0,
                verify_budget=False, timing_rounds=2, timing_repeats=3)
    for key, lut, table_fp in (("cpu_model", tables.other_cpu, fingerprints.other_cpu),
                               ("cores", tables.other_cores, fingerprints.other_cores)):
        with pytest.raises(ForeignTableError, match="(?s)" + names_both(key, table_fp, fingerprints.here)
                           + ".*--allow-foreign-lut"):
            deploy(DeployRequest(out_dir=tmp_path / f"refused-{key}", lut=lut, **base), supernet=supernet,
                   predictor=predictor)
    messages: list[str] = []
    done = deploy(DeployRequest(out_dir=tmp_path / "allowed", lut=tables.other_cpu, allow_foreign_lut=True, **base),
                  supernet=supernet, predictor=predictor, progress=messages.append)
    assert done.report["lut"]["host"]["differences"] == ["cpu_model"]
    assert done.report["lut"]["host"]["here"]["cpu_model"] == host.cpu_model
    assert any(m.startswith("warning: using a foreign latency table") and host.cpu_model in m for m in messages)


def test_local_devices_pin_only_to_cpus_this_process_may_use(host, profile):
    from ofa_deploy.profiling.hosts.devices import DeviceSpec, DeviceUnavailableError
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings
    from ofa_deploy.scale.runners.local import LocalRunner, pinned_cpus

    for cpu in host.usable_cpus:
        assert pinned_cpus("dev", [cpu], host) == {cpu}
    assert pinned_cpus("dev", list(host.usable_cpus), host) == set(host.usable_cpus)
    outside = [c for c in (min(host.usable_cpus) - 1, max(host.usable_cpus) + 1, host.cores) if c >= 0
               and c not in host.usable_cpus]
    assert outside
    for cpu in outside:
        with pytest.raises(DeviceUnavailableError, match=re.escape(f"cpus [{cpu}]") + ".*"
                           + re.escape(f"use CPUs {list(host.usable_cpus)}")):
            pinned_cpus("dev", [cpu], host)
    for bad in ("0", [], [True], ["1"], 3):
        with pytest.raises(DeviceUnavailableError, match="must be a non-empty list of CPU ids"):
            pinned_cpus("dev", bad, host)
    # the runner refuses before pinning anything (this test process is never pinned)
    runner = LocalRunner(DeviceSpec("dev-x", "local", {"cpus": [outside[-1]]}), profile, ProtocolSettings())
    with pytest.raises(DeviceUnavailableError, match="device dev-x: cannot pin"):
        runner.connect()


def test_all_threads_and_tvm_cores_follow_the_host(host):
    from ofa_deploy.export.tvm import parse_target
    from ofa_deploy.profiling.hardware import HardwareProfile

    assert HardwareProfile.load("ort-cpu-all").intra_op_threads == host.cores
    assert parse_target(None) == {"kind": "llvm", "num-cores": host.cores}
    assert parse_target("llvm -mcpu=znver3")["num-cores"] == host.cores
