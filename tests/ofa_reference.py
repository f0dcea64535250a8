"""Import the reference `ofa` package for parity tests and benchmarks.

`ofa.utils.__init__` imports `my_dataloader`, which needs torchvision, PIL and `torch._six`
(gone since torch 2.0). Only training code uses it, so an empty module stands in for it.
Never import `ofa.model_zoo` here: it downloads.
"""
from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: OFA's released artifacts (Note10 LUTs, predictors, net.configs): $OFA_DEPLOY_SHARED/reference/ofa, default ../shared.
SHARED_OFA = Path(os.environ.get("OFA_DEPLOY_SHARED", REPO.parent / "shared")) / "reference" / "ofa"
#: the reference package's model-zoo presets (ofa/model_zoo.py: ofa_net) of our four supernets: class name, kwargs
REFERENCE_SUPERNETS: dict[str, tuple[str, dict]] = {
    "ofa_mbv3_w10": ("OFAMobileNetV3", {"width_mult": 1.0, "ks_list": [3, 5, 7], "expand_ratio_list": [3, 4, 6],
                                        "depth_list": [2, 3, 4]}),
    "ofa_mbv3_w12": ("OFAMobileNetV3", {"width_mult": 1.2, "ks_list": [3, 5, 7], "expand_ratio_list": [3, 4, 6],
                                        "depth_list": [2, 3, 4]}),
    "ofa_proxyless_w13": ("OFAProxylessNASNets", {"width_mult": 1.3, "ks_list": [3, 5, 7],
                                                  "expand_ratio_list": [3, 4, 6], "depth_list": [2, 3, 4]}),
    "ofa_resnet50": ("OFAResNets", {"depth_list": [0, 1, 2], "expand_ratio_list": [0.2, 0.25, 0.35],
                                    "width_mult_list": [0.65, 0.8, 1.0]}),
}


def import_ofa() -> types.SimpleNamespace:
    """Return a namespace with the reference classes and helpers used by tests and benchmarks."""
    try:
        import pytest  # noqa: F401
    except ImportError:  # benchmarks run without pytest
        pytest = None  # type: ignore[assignment]
    sys.modules.setdefault("ofa.utils.my_dataloader", types.ModuleType("ofa.utils.my_dataloader"))
    try:
        nets = importlib.import_module("ofa.imagenet_classification.elastic_nn.networks")
        utils = importlib.import_module("ofa.utils")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if pytest is not None:
            pytest.skip(f"reference package 'ofa' not importable ({exc}); run `python3 dev.py setup`")
        raise
    return types.SimpleNamespace(
        OFAMobileNetV3=nets.OFAMobileNetV3,
        OFAProxylessNASNets=nets.OFAProxylessNASNets,
        OFAResNets=nets.OFAResNets,
        count_net_flops=utils.count_net_flops,
        count_parameters=utils.count_parameters,
        module=importlib.import_module("ofa"),
    )
