"""`Supernet`: an elastic OFA network driven by its search space's layer walk.

The modules are built from the walk of the space's largest subnet (every module path of the
supernet appears there with its largest spec). Running a subnet walks ``space.walk(cfg)`` and
calls, for each layer, the module named by its `PlacedLayer.source` with the layer's spec;
`extract` builds a `SubnetModel` from the same walk and copies the active weights. So forward,
extraction, MAC counting and latency lookup all see the same layers.
"""
from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ofa_deploy.errors import ConfigError
from ofa_deploy.nn.dynamic_layers import static_state
from ofa_deploy.nn.layers import SubnetModel, build_layer
from ofa_deploy.spaces import LayerSpec, PlacedLayer, SearchSpace, SubnetConfig

_Step = tuple[nn.Module, LayerSpec, bool]  # module, spec, module takes the spec


class Supernet(nn.Module, abc.ABC):
    """Base class of the elastic supernets.

    Args:
        space: the search space this supernet implements (its `family` must fit the subclass).
        bn_eps: batch-norm epsilon of every BN (OFA: 1e-5 MobileNetV3/ResNet, 1e-3 ProxylessNAS).
        bn_momentum: batch-norm momentum.

    The active subnet is one `SubnetConfig` held by the supernet (initially the largest);
    `forward` runs it. Modules hold no per-layer "active" state.
    """

    families: tuple[str, ...] = ()

    def __init__(self, space: SearchSpace, *, bn_eps: float = 1e-5, bn_momentum: float = 0.1) -> None:
        super().__init__()
        if space.family not in self.families:
            raise ConfigError(f"{type(self).__name__} implements the {self.families} families, "
                              f"got space {space.name!r} of family {space.family!r}")
        self.space = space
        self.bn_eps, self.bn_momentum = float(bn_eps), float(bn_momentum)
        for placed in space.walk(space.max_config()):
            if placed.source is not None:
                self._register(placed.source, self._make_module(placed))
        self._active: SubnetConfig = space.max_config()
        self._plan: list[_Step] = self._make_plan(self._active)

    # ---- subclasses ----------------------------------------------------------------------------
    @abc.abstractmethod
    def _make_module(self, placed: PlacedLayer) -> nn.Module:
        """The supernet module at `placed.source`, given its largest spec."""

    def _static(self, spec: LayerSpec) -> nn.Module:
        return build_layer(spec, self.bn_eps)

    # ---- module tree ---------------------------------------------------------------------------
    def _register(self, path: str, module: nn.Module) -> None:
        parts = path.split(".")
        if len(parts) == 1:
            self.add_module(path, module)
            return
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"unsupported supernet module path {path!r}")
        container = getattr(self, parts[0], None) if parts[0] in self._modules else None
        if container is None:
            container = nn.ModuleList()
            self.add_module(parts[0], container)
        if int(parts[1]) != len(container):
            raise ValueError(f"supernet module {path!r} registered out of order")
        container.append(module)

    # ---- active subnet -------------------------------------------------------------------------
    @property
    def active_config(self) -> SubnetConfig:
        return self._active

    def set_active(self, cfg: SubnetConfig) -> None:
        """Make `cfg` (validated against the space) the subnet that `forward` runs."""
        self._plan = self._make_plan(cfg)
        self._active = cfg

    @contextlib.contextmanager
    def active(self, cfg: SubnetConfig) -> Iterator[Supernet]:
        """``with supernet.active(cfg):`` runs `cfg`, then restores the previous active subnet."""
        previous = self._active
        self.set_active(cfg)
        try:
            yield self
        finally:
            self.set_active(previous)

    def sample_active(self, rng: np.random.Generator | int | None = None) -> SubnetConfig:
        """Activate a uniformly random subnet of the space and return it (same seed, same subnet)."""
        cfg = self.space.sample(rng)
        self.set_active(cfg)
        return cfg

    def _make_plan(self, cfg: SubnetConfig) -> list[_Step]:
        plan: list[_Step] = []
        for placed in self.space.walk(cfg):
            if placed.source is None:
                plan.append((self._static(placed.spec), placed.spec, False))
            else:
                module = self.get_submodule(placed.source)
                plan.append((module, placed.spec, hasattr(module, "active_state")))
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module, spec, takes_spec in self._plan:
            x = module(x, spec) if takes_spec else module(x)
        return x

    # ---- extraction ----------------------------------------------------------------------------
    def extract(self, cfg: SubnetConfig | None = None) -> SubnetModel:
        """A new static `SubnetModel` of `cfg` (default: the active subnet) carrying its weights.

        The supernet is not modified. The result is in eval mode if the supernet is.
        """
        cfg = self._active if cfg is None else cfg
        walk = self.space.walk(cfg)
        meta: dict[str, Any] = {"space": self.space.name, "config": cfg.to_dict()}
        state: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for index, placed in enumerate(walk):
                if placed.source is None:
                    continue
                source = self.get_submodule(placed.source)
                layer_state = source.active_state(placed.spec) if hasattr(source, "active_state") \
                    else static_state(source)
                state.update({f"layers.{index}.{k}": v for k, v in layer_state.items()})
        with torch.device("meta"):  # no random init: every tensor is assigned from `state` below
            model = SubnetModel([p.spec for p in walk], bn_eps=self.bn_eps, meta=meta)
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:  # a dynamic layer and the static layer it feeds disagree: a bug
            raise RuntimeError(f"extract({cfg.to_string()}) produced an incomplete state: {exc}") from exc
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = self.bn_momentum
        model.train(self.training)
        return model

    def extra_repr(self) -> str:
        return f"space={self.space.name!r}, active={self._active.to_string()!r}"
