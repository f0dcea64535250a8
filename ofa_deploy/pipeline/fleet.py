"""deploy_fleet: one supernet, a verified subnet for each device of a fleet.

Per device, the single deploy's steps: resolve its table (`tables`), search under its budgets (`search`), export
its picks in its format (`exporting`, the subnet work shared through `subnets.SubnetCache`), measure them on the
device through its runner and retry under a tightened budget (`verify`), and write its report (`reporting`).
Devices run through an executor (local: one after the other in this process; ray: one task per device holding
the custom resource ``device:<name>``); a device that fails gets its reason in the bundle and does not stop the
others. Each finished device's record is written atomically to ``<out>/<device>/result.json`` by the driver, so
`resume` reuses every device already finished. The bundle (`bundle`) is written at the end::

    out/
      manifest.json  summary.md  fleet.png
      <device>/      model/ (+ model_<format>/), report.json, summary.md, pareto.png, tries/, result.json
      subnets/       each distinct subnet exported to ONNX once (with its top-1)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_deploy.errors import BudgetNotVerifiedError, ConfigError, OfaDeployError
from ofa_deploy.pipeline.bundle import FleetResult, device_record, write_bundle
from ofa_deploy.fileio import atomic_write_json, read_json_file
from ofa_deploy.pipeline.exporting import ExportedPick, export_for_device
from ofa_deploy.pipeline.fleet_spec import FleetDevice, FleetSettings, FleetSpec
from ofa_deploy.pipeline.reporting import write_deploy_report
from ofa_deploy.pipeline.request import DeployRequest, Progress, say
from ofa_deploy.pipeline.search import SearchSettings, check_configs, prepare_search, search, searched_space
from ofa_deploy.pipeline.subnets import SubnetCache
from ofa_deploy.pipeline.tables import TableSource, resolve_table
from ofa_deploy.pipeline.verify import Meter, VerifySettings, measure_and_verify
from ofa_deploy.spaces.config import SubnetConfig

log = logging.getLogger(__name__)

RESULT_NAME = "result.json"
FINISHED = ("verified", "not verified")


@dataclass(frozen=True)
class FleetJob:
    """Everything a worker needs to deploy any device of the fleet (a job factory: `build` once per worker)."""

    supernet: Any
    predictor: Any
    data: Any
    space: Any
    settings: FleetSettings
    out_dir: Path
    supernet_name: str
    identity: str
    progress: Progress | None = None

    def build(self) -> Callable[[FleetDevice], dict[str, Any]]:
        return DeviceDeployer(self)


class DeviceDeployer:
    """Deploys one device after another with one subnet cache; never raises for a device: a failure becomes
    a record with its reason."""

    def __init__(self, job: FleetJob) -> None:
        self.job = job
        self.cache = SubnetCache(job.out_dir / "subnets", job.supernet, job.data,
                                 validate=job.settings.validate_export)

    def __call__(self, device: FleetDevice) -> dict[str, Any]:
        progress = _prefixed(self.job.progress, device.name)
        before = dataclasses.replace(self.cache.work, reused_configs=list(self.cache.work.reused_configs))
        t0 = time.perf_counter()
        try:
            record = deploy_device(device, self.job, self.cache, progress)
        except Exception as exc:  # noqa: BLE001 - one device's failure is its record, not the fleet's end
            log.debug("device %s failed", device.name, exc_info=True)
            record = failure_record(device, exc)
            say(progress, f"FAILED: {record['reason']}")
        record["key"] = device_key(device, self.job)
        record["worker"] = {"pid": os.getpid(), "node": platform.node()}
        record["seconds"] = round(time.perf_counter() - t0, 2)
        record["shared"] = _work_delta(before, self.cache.work)
        return record


def deploy_fleet(spec: FleetSpec, *, out_dir: str | os.PathLike[str], supernet: Any, predictor: Any,
                 data: Any = None, supernet_name: str | None = None, executor: str = "local",
                 address: str | None = None, resume: bool = False, progress: Progress | None = None) -> FleetResult:
    """Deploy the supernet to every device of `spec`; write the bundle into `out_dir`.

    Args:
        spec: the fleet (`load_fleet`, `parse_fleet`).
        supernet, predictor, data: loaded once for the whole fleet (as `deploy` takes them).
        executor: ``local`` (devices one after the other here), ``process`` or ``ray`` (one task per device with
            the custom resource ``device:<name>``; `address` joins a cluster).
        resume: reuse every device already finished in `out_dir` (same device entry, settings, weights).

    Raises:
        ConfigError: a device's budget, table or format is wrong (raised before any work starts).
        BudgetNotVerifiedError: some devices were not verified under their budget or failed (the bundle is
            written; the message names them). Its ``report`` is the `FleetResult`.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    space = searched_space(predictor, supernet.space, None, progress)
    check_fleet(spec, space, predictor, progress)
    out.mkdir(parents=True, exist_ok=True)
    job = FleetJob(supernet=supernet, predictor=predictor, data=data, space=space, settings=spec.settings,
                   out_dir=out.absolute(), supernet_name=supernet_name or supernet.space.name,
                   identity=_identity(supernet, predictor, data), progress=progress)
    records = {d.name: r for d in spec.devices if (r := finished_record(d, job)) is not None} if resume else {}
    for name in records:
        say(progress, f"[{name}] finished in an earlier run: reusing {out / name / RESULT_NAME}")
    todo = [d for d in spec.devices if d.name not in records]
    for record in _run(job, todo, executor, address):
        atomic_write_json(out / record["name"] / RESULT_NAME, record)
        records[record["name"]] = record
        say(progress, f"[{record['name']}] {record['verdict']}")
    ordered = [records[d.name] for d in spec.devices]
    result = write_bundle(out, spec, ordered, job_info={
        "supernet": job.supernet_name, "space": space.name, "identity": job.identity, "executor": executor,
        "resumed": sorted(set(d.name for d in spec.devices) - {d.name for d in todo}),
        "settings": dataclasses.asdict(spec.settings), "seconds": round(time.perf_counter() - t_start, 2)})
    bad = result.not_verified()
    if bad:
        why = "; ".join(f"{d['name']}: {d['verdict']}" for d in result.devices if not d["verified"])
        raise BudgetNotVerifiedError(f"{len(bad)} of {len(ordered)} device(s) not verified under their budget "
                                     f"({', '.join(bad)}): {why}. The bundle is in {out}", report=result)
    return result


def check_fleet(spec: FleetSpec, space: Any, predictor: Any, progress: Progress | None = None) -> None:
    """Everything that can be checked before measuring: each stored or given table loads, covers the space and
    belongs to the device's host, and each budget is within the device's feasible range."""
    from ofa_deploy.search import feasible_range
    from ofa_deploy.tables.latency import LatencyTable

    for device in spec.devices:
        where = f"fleet {spec.source}: device {device.name!r}"
        if device.table.kind == "adapt":
            _require_adapt(where)
        if device.table.kind not in ("stored", "path"):
            continue  # built or adapted tables are checked when they exist
        try:
            path = _table_path(device, space)
            table = LatencyTable.load(path)
            if not device.remote:
                from ofa_deploy.profiling.hosts.fingerprint import check_table_host

                check = check_table_host(table, device.profile)
                if not check.ok:
                    raise ConfigError(f"its table {path} was measured on another host ({check.describe()}); use "
                                      f"table: build, or table: {{adapt: {path}}} to adapt it to this host")
            setup = prepare_search(predictor, space, table, device.profile.name)
            feasible = feasible_range(setup.domain, setup.lat)
        except OfaDeployError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if device.latency_ms < feasible.low:
            raise ConfigError(
                f"{where}: budget latency_ms {device.latency_ms:g} is below the feasible range "
                f"{feasible.low:.4g}..{feasible.high:.4g} ms of its table ({path}); raise latency_ms to at least "
                f"{feasible.low:.4g}, or give it a faster profile")
        say(progress, f"[{device.name}] table {path}: budget {device.latency_ms:g} ms within the feasible range "
                      f"{feasible.low:.4g}..{feasible.high:.4g} ms")


def deploy_device(device: FleetDevice, job: FleetJob, cache: SubnetCache, progress: Progress | None
                  ) -> dict[str, Any]:
    """The single deploy's steps for one device of the fleet; returns its manifest record."""
    out = job.out_dir / device.name
    out.mkdir(parents=True, exist_ok=True)
    s, profile = job.settings, device.profile
    t0 = time.perf_counter()
    runner = connect_runner(device, s, progress)
    try:
        table = resolve_table(table_source(device, job.space, s, out), job.space, profile, out_dir=out,
                              progress=progress)
        setup = prepare_search(job.predictor, job.space, table.table, profile.name, progress=progress)
        timings = {"lut_s": time.perf_counter() - t0}
        outcome = search(setup, SearchSettings(latency_budget_ms=device.latency_ms, macs_budget=device.macs_m,
                                               params_budget=device.params_m, generations=s.generations,
                                               population=s.population, seed=s.seed,
                                               pareto_generations=s.pareto_generations), progress)
        timings.update(outcome.timings)

        def export_pick(key: str, cfg: SubnetConfig) -> ExportedPick:
            say(progress, f"export {key} as {device.format}: {cfg.to_string()}")
            subnet = cache.get(cfg, profile.batch_size)
            return export_for_device(subnet, device.format, out / "tries" / key, profile, data=job.data,
                                     validate=s.validate_export)

        t1 = time.perf_counter()
        checks = check_configs(outcome.best, outcome.front, setup.lat, s.n_checks)
        picks = {key: export_pick(key, cfg) for key, cfg in [("try1", outcome.best), *checks]}
        timings["export_s"] = time.perf_counter() - t1
        verify = VerifySettings(max_tries=s.max_tries, timing_rounds=s.timing_rounds, timing_repeats=s.timing_repeats)
        meter = Meter(job.supernet.space, table.table, profile, verify, progress, out, runner=runner)
        verification = measure_and_verify(outcome, setup, picks, export_pick, meter, verify, progress)
    finally:
        if runner is not None:
            runner.close()
    timings.update(verification.timings)
    timings["total_s"] = time.perf_counter() - t0
    request = DeployRequest(out_dir=out, profile=profile.name, lut=Path(table.info["path"]) if table.info.get("path")
                            else None, latency_budget_ms=device.latency_ms, macs_budget=device.macs_m,
                            generations=s.generations, population=s.population, seed=s.seed,
                            pareto_generations=s.pareto_generations, n_checks=s.n_checks,
                            timing_rounds=s.timing_rounds, timing_repeats=s.timing_repeats,
                            validate_export=s.validate_export, max_tries=s.max_tries)
    result = write_deploy_report(out, name=job.supernet_name, profile=profile, request=request, data=job.data,
                                 setup=setup, outcome=outcome, table=table, verification=verification,
                                 timings=timings)
    return device_record(device, result, setup, outcome, table, verification, job.out_dir)


def connect_runner(device: FleetDevice, settings: FleetSettings, progress: Progress | None) -> Any:
    """A connected device-pool runner for ssh/adb devices and pinned local ones; None: this process times."""
    if device.runner.runner == "local" and not device.runner.settings:
        return None
    from ofa_deploy.profiling.timing.protocol import ProtocolSettings
    from ofa_deploy.scale.runners import make_runner

    protocol = ProtocolSettings.from_profile(device.profile, repeats=settings.timing_repeats,
                                             min_rounds=settings.timing_rounds)
    runner = make_runner(device.runner, device.profile, protocol)
    say(progress, f"connecting to {device.name} ({device.runner.runner})")
    described = runner.connect()
    say(progress, f"connected: {json.dumps({k: described[k] for k in list(described)[:4]}, default=str)}")
    return runner


def table_source(device: FleetDevice, space: Any, settings: FleetSettings, out: Path) -> TableSource:
    """The `TableSource` of a device's table choice; remote devices' tables describe them, not this host."""
    kind = device.table.kind
    common = {"allow_foreign": device.remote, "timing_rounds": settings.timing_rounds,
              "timing_repeats": settings.timing_repeats}
    if kind in ("stored", "path"):
        return TableSource(path=_table_path(device, space), **common)
    if kind == "adapt":
        return TableSource(adapt_from=device.table.path, **common)
    return TableSource(build_at=device.table.path or out / "lut.json", **common)


def _table_path(device: FleetDevice, space: Any) -> Path:
    if device.table.kind == "path":
        return Path(device.table.path)  # type: ignore[arg-type]
    from ofa_deploy.profiling.lut import find_table

    return find_table(device.profile.name, space.name)


def _require_adapt(where: str) -> None:
    try:
        from ofa_deploy.adapt import adapt_table  # noqa: F401
    except ImportError:
        raise ConfigError(f"{where}: table adapt: needs ofa_deploy.adapt.adapt_table, which this installation does "
                          "not have; use table: build or a table file") from None


def finished_record(device: FleetDevice, job: FleetJob) -> dict[str, Any] | None:
    """The record of a device finished in an earlier run into the same directory with the same entry, settings
    and weights (None: run it)."""
    path = job.out_dir / device.name / RESULT_NAME
    if not path.is_file():
        return None
    try:
        record = read_json_file(path, what="fleet device result")
    except OfaDeployError as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
    if record.get("status") not in FINISHED:
        return None
    if record.get("key") != device_key(device, job):
        log.warning("%s was made for another device entry or settings: deploying %s again", path, device.name)
        return None
    return record


def failure_record(device: FleetDevice, exc: BaseException) -> dict[str, Any]:
    """The record of a device that could not be deployed: its entry and the reason."""
    reason = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, OfaDeployError):
        reason = f"{type(exc).__name__}: {reason}"
    return {"name": device.name, "status": "failed", "verified": False, "reason": reason,
            "verdict": f"FAILED: {reason}", **device.entry()}


def device_key(device: FleetDevice, job: FleetJob) -> str:
    """What a finished device's record depends on: its entry, the fleet's settings, weights and predictor."""
    parts = {"device": device.to_dict(), "settings": dataclasses.asdict(job.settings), "identity": job.identity}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _identity(supernet: Any, predictor: Any, data: Any) -> str:
    """A digest of the supernet's weights, the predictor's weights and the data description."""
    from ofa_deploy.predictors.dataset import state_dict_sha256

    h = hashlib.sha256(state_dict_sha256(supernet).encode())
    model = getattr(predictor, "model", None)
    if model is not None and hasattr(model, "state_dict"):
        h.update(state_dict_sha256(model).encode())
    h.update(json.dumps(data.describe() if data is not None else None, sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


def _run(job: FleetJob, devices: Sequence[FleetDevice], executor: str, address: str | None):
    """Records of `devices` as they finish, through the chosen executor."""
    if not devices:
        return
    if executor == "ray":
        from ofa_deploy.scale.fleet import DeviceExecutor

        runner: Any = DeviceExecutor(address=address, on_lost=failure_record)
        job = dataclasses.replace(job, progress=None)  # workers log; the driver prints each verdict
    else:
        from ofa_deploy.executors import create_executor

        runner = create_executor(executor)
        if executor != "local":
            job = dataclasses.replace(job, progress=None)
    with runner:
        yield from runner.map(job, devices)


def _prefixed(progress: Progress | None, name: str) -> Progress | None:
    if progress is None:
        return None
    return lambda msg: progress(f"[{name}] {msg}")


def _work_delta(before: Any, after: Any) -> dict[str, Any]:
    done = after.to_dict()
    prev = before.to_dict()
    return {"requests": done["requests"] - prev["requests"], "exported": done["exported"] - prev["exported"],
            "reused": done["reused"] - prev["reused"],
            "export_seconds": round(done["export_seconds"] - prev["export_seconds"], 3),
            "reused_configs": done["reused_configs"][len(prev["reused_configs"]):]}


__all__ = ["FleetJob", "FleetResult", "check_fleet", "deploy_fleet", "deploy_device", "device_key"]
