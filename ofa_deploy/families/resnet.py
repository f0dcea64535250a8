"""OFA-ResNet50 (ResNet-50D with elastic depth, expand ratio and width): ``ofa_resnet50``."""
from __future__ import annotations

from typing import Any

from ofa_deploy.compat.released import OFA_LICENSE, SupernetMeta, WeightsSource
from ofa_deploy.predictors.encoding import ResNetArchEncoder
from ofa_deploy.spaces import ResNetSpace, SearchSpace
from ofa_deploy.spaces.family import ModelFamily, ModelName, register_family
from ofa_deploy.spaces.resnet import resnet_plan_configs
from ofa_deploy.spaces.slots import resnet_slots


def build_supernet(space: SearchSpace) -> Any:
    from ofa_deploy.supernets.resnet import ResNetSupernet

    return ResNetSupernet(space)


FAMILY = register_family(ModelFamily(
    name="resnet",
    space_class=ResNetSpace,
    names=(
        ModelName("ofa_resnet50", "OFA ResNet50-D (ofa_resnet50: d 0/1/2, e 0.2/0.25/0.35, w 0.65/0.8/1.0)", {},
                  WeightsSource("https://huggingface.co/han-cai/ofa/resolve/main/ofa_supernet_resnet50",
                                "ofa_supernet_resnet50",
                                meta=SupernetMeta("ofa_resnet50", "ResNets", num_params=48_105_992,
                                                  macs_max=9_784_377_344, resolutions=tuple(range(128, 257, 4)),
                                                  license=OFA_LICENSE))),
    ),
    build_supernet=build_supernet,
    plan_configs=resnet_plan_configs,
    slots=resnet_slots,
    encoders={ResNetArchEncoder.name: ResNetArchEncoder},
))
