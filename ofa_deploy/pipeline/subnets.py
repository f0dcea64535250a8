"""The work a fleet shares across devices: each distinct subnet is extracted, BN-recalibrated, exported to ONNX
and evaluated (top-1) once, then converted for every device that picked it.

`SubnetCache` keeps the artifacts in memory (devices run one after the other in one process) and on disk under
``<out>/subnets/`` (devices in other processes, and runs resumed after a kill, reuse a finished export: the
artifact directory is published atomically and its ``top1.json`` written after it).
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofa_deploy.fileio import atomic_write_json, read_json_file
from ofa_deploy.pipeline.exporting import SubnetArtifact, export_subnet
from ofa_deploy.spaces.config import SubnetConfig

log = logging.getLogger(__name__)

TOP1_NAME = "top1.json"


@dataclass
class SharedWork:
    """What the cache did: subnets asked for, exported, and reused (from memory or from disk), with seconds."""

    requests: int = 0
    exported: int = 0
    reused: int = 0
    export_seconds: float = 0.0
    reused_configs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        mean = self.export_seconds / self.exported if self.exported else 0.0
        return {"requests": self.requests, "exported": self.exported, "reused": self.reused,
                "export_seconds": round(self.export_seconds, 3), "seconds_saved_estimate": round(mean * self.reused, 3),
                "reused_configs": list(self.reused_configs)}


class SubnetCache:
    """Extract + BN recalibration + ONNX export + top-1 of a subnet, done once per (subnet, batch size)."""

    def __init__(self, root: Path, supernet: Any, data: Any, *, validate: bool = True) -> None:
        self.root = Path(root)
        self.supernet = supernet
        self.data = data
        self.validate = validate
        self._memory: dict[str, SubnetArtifact] = {}
        self.work = SharedWork()

    def directory(self, cfg: SubnetConfig, batch_size: int) -> Path:
        """``<root>/<config digest>-b<batch>``: one artifact directory per subnet and batch size."""
        digest = hashlib.sha256(cfg.to_string().encode()).hexdigest()[:16]
        return self.root / f"{digest}-b{batch_size}"

    def get(self, cfg: SubnetConfig, batch_size: int) -> SubnetArtifact:
        """The exported subnet, from memory, from disk, or exported now."""
        self.work.requests += 1
        out = self.directory(cfg, batch_size)
        key = out.name
        found = self._memory.get(key) or self._from_disk(cfg, batch_size, out)
        if found is not None:
            self.work.reused += 1
            self.work.reused_configs.append(cfg.to_string())
            self._memory[key] = found
            return found
        t0 = time.perf_counter()
        artifact = export_subnet(self.supernet, cfg, self.data, out, batch_size=batch_size, validate=self.validate)
        atomic_write_json(out / TOP1_NAME, {"config": cfg.to_string(), "top1": artifact.top1,
                                            "bn_images": artifact.bn_images})
        self.work.exported += 1
        self.work.export_seconds += time.perf_counter() - t0
        self._memory[key] = artifact
        return artifact

    def _from_disk(self, cfg: SubnetConfig, batch_size: int, out: Path) -> SubnetArtifact | None:
        """A finished export left by another process or an earlier run (None when incomplete or absent)."""
        from ofa_deploy.errors import OfaDeployError
        from ofa_deploy.export.artifacts import load_report

        if not (out / TOP1_NAME).is_file():
            return None
        try:
            report = load_report(out)
            saved = read_json_file(out / TOP1_NAME, what="subnet top-1")
        except OfaDeployError as exc:
            log.warning("ignoring the unreadable subnet export %s: %s", out, exc)
            return None
        if saved.get("config") != cfg.to_string() or (self.data is not None and saved.get("top1") is None):
            return None
        return SubnetArtifact(config=cfg, shape=tuple(report.input_shape), model=None, onnx=report.path("model"),
                              report=report.to_dict(), bn_images=int(saved.get("bn_images") or 0),
                              top1=saved.get("top1"))


__all__ = ["SharedWork", "SubnetCache"]
