"""Helpers shared by the supernet tests."""
from __future__ import annotations

import torch
from torch import nn


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN affine + running stats, kernel transform matrices away from identity, larger logits; eval."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_matrix"):
                p.copy_(torch.eye(p.shape[0]) + 0.1 * torch.randn(p.shape, generator=g))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
            elif isinstance(m, nn.Linear):
                m.weight.mul_(20)
    return model.eval()
