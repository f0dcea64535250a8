"""Random weights for parity tests whose outputs mean something, and the checks that they do.

Used by the supernet, net.config and export parity tests and by benchmarks/bench_export.py (plain module, no
pytest). A default-initialised MobileNet (or a supernet with random BN statistics) gives logits that do not depend
on the input, so any parity check on them compares constants. `randomize_for_parity` gives O(1), input-dependent
activations through the whole network; `calibrate_bn` re-derives the BN statistics for the active subnet of a
supernet (one set of statistics cannot suit every subnet); `assert_input_dependent` proves the outputs vary;
`assert_close_scaled` compares outputs with tolerances relative to their scale.
"""
from __future__ import annotations

import torch
from torch import nn

_BN = nn.modules.batchnorm._BatchNorm


def _default_shape(model: nn.Module) -> tuple[int, ...]:
    res = getattr(model, "input_resolution", 224)
    return (4, 3, res, res)


@torch.no_grad()
def randomize_for_parity(model: nn.Module, *, seed: int = 0, input_shape: tuple[int, ...] | None = None,
                         logit_std: float = 0.3) -> nn.Module:
    """Randomise weights and BN statistics in place (seeded) and scale the classifier to logits of std ~`logit_std`.

    Conv / linear weights get He-normal values; kernel-transform matrices (``*_matrix`` parameters of elastic
    depthwise convs) are moved away from the identity; BN running statistics are set from one train-mode pass on a
    random batch (`calibrate_bn`, for a supernet: its active subnet) after gamma/beta are randomised, so eval-mode
    activations stay O(1) through the whole network and BN folding is actually exercised. Returns `model` (eval).
    """
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    for name, p in model.named_parameters():
        if name.endswith("_matrix"):
            p.copy_(torch.eye(p.shape[0]) + 0.1 * torch.randn(p.shape, generator=gen))
    for m in model.modules():  # affine params first, so the statistics describe the real eval-time distribution
        if isinstance(m, _BN):
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
            m.bias.copy_((torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.2)
    x = torch.randn(input_shape or _default_shape(model), generator=gen)
    calibrate_bn(model, x)
    out = model(x)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    std = float(out.std())
    if last and std > 0:
        scale = logit_std / std
        last[-1].weight.mul_(scale)
        if last[-1].bias is not None:
            last[-1].bias.mul_(scale)
    return model


@torch.no_grad()
def calibrate_bn(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every BN's running mean / variance from its input on batch `x` (one train-mode pass, in forward order).

    For a supernet only the channel prefix its active subnet uses receives statistics (the rest is reset).
    Weights are untouched. Returns `model` in eval mode.
    """
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
    model.train()
    try:
        model(x)
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
        model.eval()
    return model


def assert_input_dependent(out: torch.Tensor, *, min_rel: float = 0.05, max_abs: float = 1e3) -> torch.Tensor:
    """Return `out` (a batch of outputs for different random inputs) after checking that it is finite, of moderate
    magnitude, and that its rows differ by more than `min_rel` of its largest entry.

    A parity check on outputs that do not depend on the input would pass for any weights.
    """
    assert out.dim() >= 2 and out.size(0) >= 2, f"need a batch of at least two outputs, got shape {tuple(out.shape)}"
    assert torch.isfinite(out).all(), "outputs are not finite"
    peak = float(out.abs().max())
    assert 0 < peak <= max_abs, f"outputs of magnitude {peak:.3g} (want 0 < |out| <= {max_abs:g})"
    spread = min(float((out[i] - out[0]).abs().max()) for i in range(1, out.size(0)))
    assert spread > min_rel * peak, f"outputs do not depend on the input: rows differ by {spread:.3g}, " \
                                    f"|out| up to {peak:.3g}"
    return out


def assert_close_scaled(got: torch.Tensor, want: torch.Tensor, *, rel: float = 1e-5, msg: str = "") -> float:
    """Assert ``|got - want| <= rel * (std(want) + |want|)`` elementwise; return the worst difference / std(want).

    The tolerance follows the scale of the (input-dependent) reference output, so it stays tight for O(1) logits
    and meaningful for large ones.
    """
    scale = float(want.std())
    assert scale > 0, "reference output is constant"
    torch.testing.assert_close(got, want, rtol=rel, atol=rel * scale, msg=lambda m: f"{msg}\n{m}")
    return float((got - want).abs().max()) / scale
