"""Helpers for the export tests and benchmarks/bench_export.py: make a random-init model produce O(1) logits so
parity checks mean something. Plain module (no pytest), so benchmarks can import it."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomize_for_parity(model: nn.Module, *, seed: int = 0, input_shape: tuple[int, ...] | None = None,
                         logit_std: float = 0.3) -> nn.Module:
    """Randomise weights and BN statistics in place (seeded) and scale the classifier to logits of std ~`logit_std`.

    BN running statistics are set from one train-mode pass on a random batch, then gamma/beta are randomised, so
    eval-mode activations stay O(1) through the whole network and BN folding is actually exercised.
    Returns `model` (in eval mode).
    """
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    if input_shape is None:
        res = getattr(model, "input_resolution", 224)
        input_shape = (4, 3, res, res)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:  # affine params first, so the statistics below describe the real eval-time distribution
        m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
        m.bias.copy_((torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.2)
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration pass
    model.train()
    x = torch.randn(input_shape, generator=gen)
    model(x)
    for m in bns:
        m.momentum = 0.1
    model.eval()
    out = model(x)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    std = float(out.std())
    if last and std > 0:
        scale = logit_std / std
        last[-1].weight.mul_(scale)
        if last[-1].bias is not None:
            last[-1].bias.mul_(scale)
    return model
