"""OFA-MobileNetV3: ``ofa_mbv3_w10`` and ``ofa_mbv3_w12`` (Cai et al., "Once-for-All", ICLR 2020)."""
from __future__ import annotations

from typing import Any

from ofa_deploy.compat.released import OFA_LICENSE, OFA_NETS_URL, SupernetMeta, WeightsSource
from ofa_deploy.predictors.encoding import MobileNetArchEncoder, TutorialMBv3Encoder
from ofa_deploy.spaces import MobileSpace, SearchSpace
from ofa_deploy.spaces.family import ModelFamily, ModelName, register_family
from ofa_deploy.spaces.mobile import mobile_plan_configs
from ofa_deploy.spaces.slots import mobile_slots

RESOLUTIONS = tuple(range(128, 225, 4))


def build_supernet(space: SearchSpace) -> Any:
    from ofa_deploy.supernets.mobilenetv3 import MobileNetV3Supernet

    return MobileNetV3Supernet(space)


def _released(name: str, filename: str, *, num_params: int, macs_max: int) -> WeightsSource:
    return WeightsSource(OFA_NETS_URL + filename, filename,
                         meta=SupernetMeta(name, "MobileNetV3", num_params=num_params, macs_max=macs_max,
                                           resolutions=RESOLUTIONS, license=OFA_LICENSE))


FAMILY = register_family(ModelFamily(
    name="mbv3",
    space_class=MobileSpace,
    space_args={"family": "mbv3"},
    names=(
        ModelName("ofa_mbv3_w10", "OFA MobileNetV3, width 1.0 (ofa_mbv3_d234_e346_k357_w1.0)", {"width_mult": 1.0},
                  _released("ofa_mbv3_w10", "ofa_mbv3_d234_e346_k357_w1.0", num_params=7_678_880,
                            macs_max=566_170_656)),
        ModelName("ofa_mbv3_w12", "OFA MobileNetV3, width 1.2 (ofa_mbv3_d234_e346_k357_w1.2)", {"width_mult": 1.2},
                  _released("ofa_mbv3_w12", "ofa_mbv3_d234_e346_k357_w1.2", num_params=10_715_752,
                            macs_max=843_101_040)),
    ),
    build_supernet=build_supernet,
    plan_configs=mobile_plan_configs,
    slots=mobile_slots,
    encoders={MobileNetArchEncoder.name: MobileNetArchEncoder, TutorialMBv3Encoder.name: TutorialMBv3Encoder},
    ofa_lut_schema="mbv3",
    in_context_lut=True,
))
