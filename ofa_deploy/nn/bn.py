"""Batch-norm recalibration (OFA's ``set_running_statistics``), without global flags.

Every subnet of a supernet shares one set of BN statistics, so a subnet needs its own statistics
before it is evaluated or exported. `recalibrate_bn` runs a few batches through the network with
every BN normalising by the batch's own statistics, and sets each BN's running mean / variance to
the mean of the per-batch statistics (weighted by batch size, as OFA's AverageMeter; equal weights
for equal batches). Per-batch variances are biased (population) variances, as in OFA.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from ofa_deploy.errors import ConfigError
from ofa_deploy.nn.ops import DynamicBatchNorm2d

log = logging.getLogger(__name__)


class _Stats:
    """Running sums of per-batch channel means and variances of one BN."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.var: torch.Tensor | None = None

    def add(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        if self.mean is None or self.var is None:
            self.mean, self.var = mean * n, var * n
        else:
            if mean.shape != self.mean.shape:
                raise ConfigError("a batch norm layer saw different channel counts across batches; "
                                  "recalibrate one subnet at a time")
            self.mean, self.var = self.mean + mean * n, self.var + var * n
        self.n += n


def _target_bn(module: nn.Module) -> nn.BatchNorm2d | None:
    if isinstance(module, DynamicBatchNorm2d):
        return module.bn
    if isinstance(module, nn.BatchNorm2d):
        return module
    return None


def _batch_stats_hook(bn: nn.BatchNorm2d, stats: _Stats):  # noqa: ANN202
    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> torch.Tensor:
        x = inputs[0]
        c = x.size(1)
        mean = x.mean(dim=(0, 2, 3))
        var = (x - mean.view(1, c, 1, 1)).pow(2).mean(dim=(0, 2, 3))
        stats.add(mean, var, x.size(0))
        return F.batch_norm(x, mean, var, bn.weight[:c], bn.bias[:c], False, 0.0, bn.eps)

    return hook


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


def _images(batch: Any) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    if isinstance(batch, dict) and isinstance(batch.get("image", batch.get("images")), torch.Tensor):
        return batch.get("image", batch.get("images"))
    raise ConfigError("recalibration batches must be image tensors or (images, labels) pairs, "
                      f"got {type(batch).__name__}")


@runtime_checkable
class _SwitchableSubnet(Protocol):
    """What `recalibrate_bn` needs of a supernet (duck-typed: `nn` does not import `supernets`)."""

    @property
    def active_config(self) -> Any: ...

    def set_active(self, cfg: Any) -> None: ...

    def active(self, cfg: Any) -> contextlib.AbstractContextManager[Any]: ...


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any], *, supernet_config: Any = None) -> int:
    """Reset BN running statistics of `model` from `batches`; returns the number of images used.

    Args:
        model: a static network (e.g. `SubnetModel`) or a `Supernet`.
        batches: image tensors (N, 3, H, W) or ``(images, labels)`` pairs.
        supernet_config: for a supernet, the subnet whose statistics are recalibrated (default: the
            active one). Only the channel prefix that subnet uses is written; every other tensor,
            the active subnet and all train/eval flags are left as they were.
    """
    is_supernet = isinstance(model, _SwitchableSubnet)
    if supernet_config is not None and not is_supernet:
        raise ConfigError("supernet_config is only for supernets; a static model is recalibrated as it is")
    context = model.active(supernet_config) if is_supernet and supernet_config is not None \
        else contextlib.nullcontext()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    stats: dict[nn.BatchNorm2d, _Stats] = {}
    handles = []
    inner_bns = {m.bn for m in model.modules() if isinstance(m, DynamicBatchNorm2d)}
    for module in model.modules():
        bn = _target_bn(module)
        if bn is None or module in inner_bns:
            continue
        stats[bn] = _Stats()
        handles.append(module.register_forward_hook(_batch_stats_hook(bn, stats[bn])))
    n_images = 0
    try:
        with context, _eval_mode(model):
            for batch in batches:
                images = _images(batch).to(device)
                model(images)
                n_images += images.size(0)
    finally:
        for handle in handles:
            handle.remove()
    if n_images == 0:
        raise ConfigError("recalibrate_bn got no batches; pass at least one batch of images")
    updated = 0
    for bn, st in stats.items():
        if st.n == 0 or st.mean is None or st.var is None:
            continue
        c = st.mean.numel()
        bn.running_mean[:c].copy_(st.mean / st.n)
        bn.running_var[:c].copy_(st.var / st.n)
        updated += 1
    log.info("recalibrated %d batch-norm layers on %d images", updated, n_images)
    return n_images
