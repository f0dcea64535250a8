"""Device runners: ssh against a real sshd on 127.0.0.1; adb command construction and parsing of recorded
onnxruntime_perf_test output; clear errors for missing tools and unreachable devices."""
from __future__ import annotations

import subprocess

import pytest

from ofa_deploy.errors import ConfigError, OfaDeployError
from ofa_deploy.profiling.models import write_identity_model
from ofa_deploy.profiling.hosts.devices import DeviceSpec, DeviceUnavailableError, parse_devices
from ofa_deploy.scale.runners import make_runner
from ofa_deploy.scale.runners.adb import AdbRunner, parse_perf_test

PERF_TEST_OUTPUT = """\
Setting intra_op_num_threads to 1
Session creation time cost: 0.0213489 s
First inference time cost: 4 ms
Total inference time cost: 0.0612841 s
Total inference requests: 20
Average inference time cost: 3.06421 ms
Total inference run time: 0.0613537 s
Number of inferences per second: 325.978
Avg CPU usage: 24 %
Peak working set size: 28291072 bytes
Avg CPU usage:24
Peak working set size:28291072
Runs:20
Min Latency: 0.00291537 s
Max Latency: 0.00342215 s
P50 Latency: 0.00302141 s
P90 Latency: 0.00329975 s
P95 Latency: 0.00336012 s
P99 Latency: 0.00342215 s
P999 Latency: 0.00342215 s
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_space):
    from ofa_deploy.profiling.timing.anchor import anchor_model, default_anchor_config

    tmp = tmp_path_factory.mktemp("runner_models")
    cfg = default_anchor_config(tiny_space)
    anchor = anchor_model(tiny_space, cfg, tmp)
    return {"anchor": (anchor, (1, 3, cfg.resolution, cfg.resolution)),
            "identity": (write_identity_model(tmp / "overhead.onnx"), (1, 1, 1, 1))}


def test_ssh_runner_times_models_on_the_device_over_real_sshd(sshd, profile, fast_protocol, models, tmp_path):
    settings = {**sshd["settings"], "workdir": str(tmp_path / "fresh-device")}
    device = parse_devices([{"name": "pi-loop", "runner": "ssh", **settings}])[0]
    runner = make_runner(device, profile, fast_protocol)
    info = runner.connect()
    try:
        assert info["runner"] == "ssh" and info["ready"] and info["onnxruntime"]
        (anchor, anchor_shape), (ident, ident_shape) = models["anchor"], models["identity"]
        visit = runner.paired_visit(ident, ident_shape, anchor, anchor_shape)
        assert 0 < visit["item_ms"] < visit["anchor_ms"] and visit["ratio"] == pytest.approx(
            visit["item_ms"] / visit["anchor_ms"])
        assert runner.copied == {anchor.name, ident.name}  # models were copied to the device once
        again = runner.paired_visit(anchor, anchor_shape, anchor, anchor_shape)
        assert 0.5 < again["ratio"] < 2.0
        # the device disappears (its connection dies): a DeviceUnavailableError, which the pool retries elsewhere
        runner.proc.kill()
        runner.proc.wait()
        with pytest.raises(DeviceUnavailableError, match="pi-loop"):
            runner.paired_visit(ident, ident_shape, anchor, anchor_shape)
    finally:
        runner.close()
    # a fresh runner reuses the models already on the device
    second = make_runner(device, profile, fast_protocol)
    second.connect()
    try:
        assert {anchor.name, ident.name} <= second.copied
    finally:
        second.close()


def test_ssh_runner_that_cannot_connect_says_why(sshd, profile, fast_protocol):
    bad = {**sshd["settings"], "identity_file": "/nonexistent/key"}
    runner = make_runner(DeviceSpec("pi-nokey", "ssh", bad), profile, fast_protocol)
    with pytest.raises(DeviceUnavailableError, match=r"(?s)pi-nokey: connecting failed.*Permission denied.*without a password"):
        runner.connect()


def test_adb_command_and_parsing(tmp_path, profile, fast_protocol):
    stats = parse_perf_test(PERF_TEST_OUTPUT)
    assert stats["min_ms"] == pytest.approx(2.91537) and stats["p50_ms"] == pytest.approx(3.02141)
    assert stats["average_ms"] == pytest.approx(3.06421) and stats["runs"] == 20
    with pytest.raises(ConfigError, match="printed no latency"):
        parse_perf_test("CANNOT LINK EXECUTABLE: library libonnxruntime.so not found\n")
    device = parse_devices([{"name": "pixel4-01", "runner": "adb", "serial": "9A0AY1234", "cpus": "f0",
                             "perf_test": str(tmp_path / "onnxruntime_perf_test")}])[0]
    runner = AdbRunner(device, profile, fast_protocol)
    argv = runner.perf_test_command("/data/local/tmp/ofa-deploy/layer.onnx")
    assert argv[:4] == ["adb", "-s", "9A0AY1234", "shell"]
    assert argv[4] == ("taskset f0 /data/local/tmp/ofa-deploy/onnxruntime_perf_test -e cpu -x 1 -y 1 -o 99 -m times "
                       f"-r {fast_protocol.repeats} -I /data/local/tmp/ofa-deploy/layer.onnx")


def test_adb_missing_is_a_clear_error(tmp_path, profile, fast_protocol):
    device = DeviceSpec("pixel4-01", "adb", {"perf_test": str(tmp_path / "perf"), "adb": "adb-not-installed-here"})
    with pytest.raises(DeviceUnavailableError, match="not on PATH; install Android platform-tools"):
        AdbRunner(device, profile, fast_protocol).connect()
    assert issubclass(DeviceUnavailableError, OfaDeployError)


def test_device_entries_are_validated():
    with pytest.raises(ConfigError, match=r"devices\[0\] \(x\): the ssh runner needs host"):
        parse_devices([{"name": "x", "runner": "ssh"}])
    with pytest.raises(ConfigError, match="runner 'telnet' is unknown"):
        parse_devices([{"name": "x", "runner": "telnet"}])
    with pytest.raises(ConfigError, match="unique"):
        parse_devices([{"name": "x"}, {"name": "x"}])
    with pytest.raises(ConfigError, match="unknown setting"):
        parse_devices([{"name": "x", "runner": "local", "host": "h"}])


def test_no_ray_names_the_extra(tmp_path):
    """With Ray not importable, --executor ray says which extra to install."""
    import sys

    code = ("import sys; sys.modules['ray'] = None\n"
            "from ofa_deploy.executors import create_executor\n"
            "try:\n    create_executor('ray')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("BackendUnavailableError") and "pip install 'ofa-deploy[ray]'" in out


def test_unreachable_cluster_is_a_clear_error():
    from ofa_deploy.scale.ray_executor import check_reachable

    with pytest.raises(OfaDeployError, match="no Ray cluster answers at 127.0.0.1:1 .*ray start --head"):
        check_reachable("127.0.0.1:1", timeout=2)


def test_cli_unreachable_ray_address(tmp_path):
    from click.testing import CliRunner

    from ofa_deploy.cli.main import cli

    result = CliRunner().invoke(cli, ["profile", "build", "--profile", "ort-cpu-1t", "--supernet", "ofa_mbv3_w10",
                                      "--resolutions", "160", "--limit", "1", "--out", str(tmp_path / "t.json"),
                                      "--no-progress", "--executor", "ray", "--ray-address", "127.0.0.1:1"])
    assert result.exit_code == 1 and "no Ray cluster answers at 127.0.0.1:1" in result.output
    result = CliRunner().invoke(cli, ["profile", "build", "--profile", "ort-cpu-1t", "--supernet", "ofa_mbv3_w10",
                                      "--out", str(tmp_path / "t.json"), "--ray-address", "127.0.0.1:1"])
    assert result.exit_code == 2 and "--ray-address needs --executor ray" in result.output
