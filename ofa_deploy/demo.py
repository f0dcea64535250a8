"""A real, small OFA-style supernet trained with progressive shrinking on scikit-learn's digits.

The demo runs the whole accuracy side end to end on a laptop CPU in a few minutes:

1. **supernet**: an OFA-MobileNetV3 variant (narrow widths, elastic kernel {3,5}, expand {2,3,4},
   depth {1,2}, resolutions {16,20,24}, 10 classes) trained with progressive shrinking: the largest
   network first, then elastic kernel, elastic depth and elastic expand phases, sampling one subnet
   and one resolution per step (optionally distilling from the largest network);
2. **accuracy dataset**: sampled subnets × resolutions, BN recalibrated, top-1 on a holdout;
3. **accuracy predictor**: OFA's MLP trained on it, split by architecture.

Each stage is cached under ``$OFA_DEPLOY_CACHE/demo`` (default ``~/.cache/ofa-deploy/demo``) in a
directory named by a hash of the recipe, recreated when absent and reused otherwise.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ofa_deploy.data import DataSplits, load_digits
from ofa_deploy.errors import CheckpointError
from ofa_deploy.fileio import atomic_path, atomic_write_json, atomic_write_text, read_json_file
from ofa_deploy.predictors.accuracy import AccuracyPredictor
from ofa_deploy.predictors.dataset import (
    build_accuracy_dataset,
    evaluate_subnet,
    load_accuracy_dataset,
    state_dict_sha256,
)
from ofa_deploy.predictors.training import encoder_for_data, torch_threads, train_predictor
from ofa_deploy.spaces import SubnetConfig
from ofa_deploy.supernets import Supernet, create_supernet

log = logging.getLogger(__name__)

DEMO_BASE_SUPERNET = "ofa_mbv3_w10"
DEMO_NAME = "demo_mbv3_digits"


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that determines the demo's weights, dataset and predictor (hashed into the cache key)."""

    base_widths: tuple[int, ...] = (8, 8, 16, 16, 24, 32, 40, 128, 128)
    depths: tuple[int, ...] = (1, 2)
    kernel_sizes: tuple[int, ...] = (3, 5)
    expand_ratios: tuple[float, ...] = (2.0, 3.0, 4.0)
    resolutions: tuple[int, ...] = (16, 20, 24)
    seed: int = 0
    batch_size: int = 64
    # progressive shrinking: steps of the full-network, elastic kernel, depth and expand phases
    phase_steps: tuple[int, int, int, int] = (200, 60, 80, 100)
    phase_lr: tuple[float, float, float, float] = (0.3, 0.1, 0.1, 0.1)
    weight_decay: float = 3e-5
    distill: bool = False
    holdout_fraction: float = 0.3
    calibration_size: int = 128
    n_subnets: int = 150
    dataset_resolutions: tuple[int, ...] = (16, 20, 24)
    predictor_epochs: int = 600
    threads: int = 1

    def space_overrides(self) -> dict[str, Any]:
        return {"base_widths": self.base_widths, "depths": self.depths, "kernel_sizes": self.kernel_sizes,
                "expand_ratios": self.expand_ratios, "resolutions": self.resolutions, "n_classes": 10}

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def key(self, *fields: str) -> str:
        data = self.to_dict()
        data = {k: data[k] for k in fields} if fields else data
        data.pop("threads", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


QUICK_RECIPE = DemoRecipe(phase_steps=(60, 15, 15, 20), n_subnets=24, resolutions=(16, 24),
                          dataset_resolutions=(16, 24), predictor_epochs=100)
"""A much shorter recipe for tests (weak supernet, small dataset); cached separately."""
_TRAIN_FIELDS = ("base_widths", "depths", "kernel_sizes", "expand_ratios", "resolutions", "seed", "batch_size",
                 "phase_steps", "phase_lr", "weight_decay", "distill", "holdout_fraction", "calibration_size")


@dataclass
class DemoAssets:
    """Paths and figures of a prepared demo (what `prepare_demo_assets` returns)."""

    supernet: str
    space_overrides: dict[str, Any]
    weights: Path
    dataset: Path
    predictor: Path
    figures: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    reused: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"supernet": self.supernet, "space_overrides": _jsonable(self.space_overrides),
                "weights": str(self.weights), "dataset": str(self.dataset), "predictor": str(self.predictor),
                "figures": self.figures, "timings_s": self.timings, "reused": self.reused}

    def load_supernet(self) -> Supernet:
        return load_demo_supernet(self.weights)

    def load_predictor(self) -> AccuracyPredictor:
        return AccuracyPredictor.load(self.predictor)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def demo_cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """`override`, else ``$OFA_DEPLOY_CACHE/demo``, else ``~/.cache/ofa-deploy/demo``."""
    if override is not None:
        return Path(override)
    env = os.environ.get("OFA_DEPLOY_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "ofa-deploy") / "demo"


def create_demo_supernet(recipe: DemoRecipe = DemoRecipe()) -> Supernet:
    """A randomly initialised demo supernet (seeded)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        return create_supernet(DEMO_BASE_SUPERNET, **recipe.space_overrides())


def load_demo_data(recipe: DemoRecipe = DemoRecipe()) -> DataSplits:
    return load_digits(image_size=max(recipe.resolutions), seed=recipe.seed,
                       holdout_fraction=recipe.holdout_fraction, calibration_size=recipe.calibration_size)


# ---- progressive shrinking ---------------------------------------------------------------------------
def _phase_config(supernet: Supernet, phase: int, rng: np.random.Generator) -> SubnetConfig:
    """Phase 0: largest; 1: + elastic kernel; 2: + elastic depth; 3: + elastic expand. Resolution always elastic."""
    space = supernet.space
    cfg = space.sample(rng)
    big = space.max_config(cfg.resolution)
    return big.replace(kernel_sizes=cfg.kernel_sizes if phase >= 1 else big.kernel_sizes,
                       depths=cfg.depths if phase >= 2 else big.depths,
                       expand_ratios=cfg.expand_ratios if phase >= 3 else big.expand_ratios)


def _augment(images: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translation by up to `pad` pixels (pad with the background value, then crop)."""
    n, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
    return padded[:, :, dy : dy + h, dx : dx + w]


def train_demo_supernet(recipe: DemoRecipe, data: DataSplits, *, progress: bool = False) -> tuple[Supernet, dict]:
    """Train the demo supernet with progressive shrinking; returns it (eval mode) and per-phase figures."""
    from ofa_deploy.progress import progress_bar

    supernet = create_demo_supernet(recipe)
    rng = np.random.default_rng(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    train = data.train
    teacher: Supernet | None = None
    phases = []
    total = sum(recipe.phase_steps)
    with progress_bar(total=total, desc="demo supernet", unit="step", disable=not progress, leave=False) as bar:
        for phase, (steps, lr) in enumerate(zip(recipe.phase_steps, recipe.phase_lr)):
            if steps <= 0:
                continue
            t0 = time.perf_counter()
            opt = torch.optim.SGD(supernet.parameters(), lr=lr, momentum=0.9, nesterov=True,
                                  weight_decay=recipe.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            supernet.train()
            losses = []
            for _ in range(steps):
                cfg = _phase_config(supernet, phase, rng)
                idx = torch.from_numpy(rng.choice(len(train), size=recipe.batch_size, replace=False))
                images = _augment(train.at(cfg.resolution)[idx], gen)
                labels = train.labels[idx]
                with supernet.active(cfg):
                    logits = supernet(images)
                loss = F.cross_entropy(logits, labels)
                if teacher is not None:
                    with torch.no_grad(), teacher.active(teacher.space.max_config(cfg.resolution)):
                        soft = F.softmax(teacher(images), dim=1)
                    loss = loss + torch.sum(-soft * F.log_softmax(logits, dim=1), dim=1).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
                bar.update(1)
            phases.append({"phase": ["largest", "elastic_kernel", "elastic_depth", "elastic_expand"][phase],
                           "steps": steps, "lr": lr, "final_loss": float(np.mean(losses[-10:])),
                           "seconds": round(time.perf_counter() - t0, 2)})
            if phase == 0 and recipe.distill:
                teacher = copy.deepcopy(supernet).eval()
    supernet.set_active(supernet.space.max_config())
    supernet.eval()
    return supernet, {"phases": phases}


def save_demo_supernet(supernet: Supernet, path: Path, recipe: DemoRecipe, info: dict[str, Any]) -> None:
    """Weights (plain state dict) + sidecar JSON naming the supernet and its space overrides."""
    with atomic_path(path) as tmp:
        torch.save(supernet.state_dict(), tmp)
    meta = {"supernet": DEMO_BASE_SUPERNET, "name": DEMO_NAME, "space_overrides": _jsonable(recipe.space_overrides()),
            "recipe": recipe.to_dict(), "weights_sha256": state_dict_sha256(supernet), **info}
    atomic_write_json(path.with_suffix(".json"), meta, default=None)


def load_demo_supernet(path: str | os.PathLike[str]) -> Supernet:
    """A demo supernet from its weights file and the sidecar JSON written next to it."""
    path = Path(path)
    side = path.with_suffix(".json")
    if not path.is_file() or not side.is_file():
        raise CheckpointError(f"demo weights {path} (and {side.name} beside it) not found; run "
                              "`ofa-deploy accuracy train-demo` to create them")
    meta = read_json_file(side, what="demo supernet sidecar")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["space_overrides"].items()}
    supernet = create_supernet(meta["supernet"], **overrides)
    supernet.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return supernet.eval()


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _time(timings: dict[str, float], name: str, t0: tuple[float, float]) -> None:
    """Record wall seconds under `name` and this process's CPU seconds under `name`_cpu."""
    timings[name] = round(time.perf_counter() - t0[0], 2)
    timings[f"{name}_cpu"] = round(time.process_time() - t0[1], 2)


def prepare_demo_assets(cache_dir: str | os.PathLike[str] | None = None, *, quick: bool = False,
                        recipe: DemoRecipe | None = None, progress: bool = False) -> DemoAssets:
    """Train (or reuse) the demo supernet, its accuracy dataset and its accuracy predictor.

    Args:
        cache_dir: root of the demo cache (default `demo_cache_dir()`).
        quick: a much shorter recipe (tests); cached separately.
        recipe: override the recipe entirely.
    Returns paths (weights, dataset JSONL, predictor dir), figures and per-stage timings in seconds.
    """
    recipe = recipe or (QUICK_RECIPE if quick else DemoRecipe())
    root = demo_cache_dir(cache_dir) / f"{DEMO_NAME}-{recipe.key(*_TRAIN_FIELDS)}"
    weights = root / "supernet.pt"
    dataset_path = root / f"accuracy-{recipe.key('n_subnets', 'dataset_resolutions', 'seed')}.jsonl"
    predictor_dir = root / f"predictor-{recipe.key('n_subnets', 'dataset_resolutions', 'seed', 'predictor_epochs')}"
    timings: dict[str, float] = {}
    reused: dict[str, bool] = {}
    figures: dict[str, Any] = {}
    with torch_threads(recipe.threads):
        t0 = _now()
        data = load_demo_data(recipe)
        _time(timings, "data", t0)

        t0 = _now()
        reused["supernet"] = weights.is_file() and weights.with_suffix(".json").is_file()
        if reused["supernet"]:
            supernet = load_demo_supernet(weights)
        else:
            supernet, info = train_demo_supernet(recipe, data, progress=progress)
            space = supernet.space
            copy_net = copy.deepcopy(supernet)
            info["top1_largest"] = evaluate_subnet(copy_net, space.max_config(), data)
            info["top1_smallest"] = evaluate_subnet(copy_net, space.min_config(), data)
            save_demo_supernet(supernet, weights, recipe, info)
        meta = json.loads(weights.with_suffix(".json").read_text())
        figures["supernet"] = {"top1_largest": meta.get("top1_largest"), "top1_smallest": meta.get("top1_smallest"),
                               "phases": meta.get("phases"),
                               "n_params": int(sum(p.numel() for p in supernet.parameters()))}
        _time(timings, "supernet", t0)

        t0 = _now()
        summary = build_accuracy_dataset(
            supernet, data, dataset_path, n_subnets=recipe.n_subnets, resolutions=recipe.dataset_resolutions,
            seed=recipe.seed, resume=True, supernet_name=DEMO_NAME, weights_sha256=meta["weights_sha256"],
            progress=progress)
        reused["dataset"] = summary.n_evaluated == 0
        figures["dataset"] = {"n_items": summary.n_items, "n_subnets": recipe.n_subnets,
                              "resolutions": list(recipe.dataset_resolutions), "top1_min": summary.top1_min,
                              "top1_median": summary.top1_median, "top1_max": summary.top1_max}
        _time(timings, "dataset", t0)

        t0 = _now()
        reused["predictor"] = (predictor_dir / "predictor.json").is_file()
        if reused["predictor"]:
            predictor = AccuracyPredictor.load(predictor_dir)
        else:
            acc = load_accuracy_dataset(dataset_path)
            encoder = encoder_for_data(supernet.space, acc.configs)
            predictor, _ = train_predictor(encoder, acc.configs, acc.accuracies, seed=recipe.seed,
                                           max_epochs=recipe.predictor_epochs,
                                           meta={"dataset": str(dataset_path), "supernet": DEMO_NAME,
                                                 "weights_sha256": meta["weights_sha256"]})
            predictor.save(predictor_dir)
        figures["predictor"] = predictor.meta.get("training", {})
        _time(timings, "predictor", t0)
    timings["total"] = round(sum(v for k, v in timings.items() if not k.endswith("_cpu")), 2)
    timings["total_cpu"] = round(sum(v for k, v in timings.items() if k.endswith("_cpu")), 2)
    return DemoAssets(supernet=DEMO_BASE_SUPERNET, space_overrides=recipe.space_overrides(), weights=weights,
                      dataset=dataset_path, predictor=predictor_dir, figures=figures, timings=timings, reused=reused)


def recipe_from_dict(data: dict[str, Any]) -> DemoRecipe:
    """A recipe from `DemoRecipe.to_dict()` output."""
    base = DemoRecipe()
    return replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


#: the demo fleet: (device name, hardware profile, export format, budget as a fraction of the feasible range its
#: table predicts, the profile whose table is adapted to it, or None: its table is built here).
DEMO_FLEET: tuple[tuple[str, str, str, float, str | None], ...] = (
    ("ort-1t", "ort-cpu-1t", "onnx", 0.3, None),
    ("ort-2t", "ort-cpu-all", "ort", 0.6, None),
    ("ort-1t-int8", "ort-cpu-1t-int8", "int8", 0.5, "ort-cpu-1t"),
)
#: `demo --fleet --quick` skips the int8 adaptation (it exports ~50 int8 subnets, about two minutes here): its int8
#: device predicts with the fp32 table of ort-cpu-1t, which under-predicts these int8 QDQ models about 1.7x on x86
#: hosts, so its budget lies above the fp32 range and the verification's retries find its pick.
QUICK_INT8 = ("ort-1t-int8", "ort-cpu-1t", "int8", 1.3, None)


def demo_fleet_file(assets: DemoAssets, out_dir: Path, *, quick: bool = False, seed: int = 0,
                    progress: Any = None) -> Path:
    """Write ``<out_dir>/fleet.yaml``: the demo supernet on three devices of this machine (`DEMO_FLEET`), each
    budget a different fraction of that device's feasible latency range, so the three picks differ.

    Each device's table is made once into the demo cache (``lut-<profile>-<sha>.json``, as the single demo's):
    built here, or adapted from another profile's table (`ofa_deploy.adapt`, kept only when its held-out check
    passes); the budgets are read from those tables.
    """
    import yaml

    from ofa_deploy.pipeline.search import prepare_search, searched_space
    from ofa_deploy.pipeline.tables import TableSource, resolve_table
    from ofa_deploy.profiling.hardware import HardwareProfile
    from ofa_deploy.search import feasible_range

    supernet, predictor = assets.load_supernet(), assets.load_predictor()
    space = searched_space(predictor, supernet.space, None)
    timing = {"rounds": 2, "repeats": 10} if quick else {}
    devices = []
    entries = (*DEMO_FLEET[:2], QUICK_INT8) if quick else DEMO_FLEET
    for name, profile_name, fmt, fraction, adapt_from in entries:
        profile = HardwareProfile.load(profile_name)
        path = _demo_table_path(assets, profile)
        source = TableSource(build_at=path, timing_rounds=timing.get("rounds"), timing_repeats=timing.get("repeats"))
        if adapt_from is not None and not path.is_file():
            source = TableSource(adapt_from=_demo_table_path(assets, HardwareProfile.load(adapt_from)), build_at=path)
        table = resolve_table(source, space, profile, out_dir=out_dir, progress=progress).table
        setup = prepare_search(predictor, space, table, profile.name)
        lat = feasible_range(setup.domain, setup.lat)
        budget = round(lat.low + fraction * (lat.high - lat.low), 5)
        devices.append({"name": name, "profile": profile_name, "runner": "local", "format": fmt,
                        "budget": {"latency_ms": budget},
                        "table": str(path) if adapt_from is not None else {"build": str(path)}})
    search = {"generations": 60, "population": 40, "pareto_generations": 15, "n_checks": 1, "seed": seed} if quick \
        else {"generations": 300, "population": 80, "pareto_generations": 40, "n_checks": 1, "seed": seed}
    fleet = {"supernet": DEMO_BASE_SUPERNET, "weights": str(assets.weights), "predictor": str(assets.predictor),
             "data": "digits", "search": search, **({"timing": timing} if timing else {}), "devices": devices}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "fleet.yaml"
    atomic_write_text(path, "# the demo fleet (ofa-deploy demo --fleet): repeat with\n"
                            f"#   ofa-deploy deploy --fleet {path} --out {out_dir}\n"
                            + yaml.safe_dump(fleet, sort_keys=False))
    return path


def _demo_table_path(assets: DemoAssets, profile: Any) -> Path:
    """Where the demo keeps its latency table for `profile` (the single demo's ``lut_cache``)."""
    return Path(assets.weights).parent / f"lut-{profile.name}-{profile.sha256[:8]}.json"
