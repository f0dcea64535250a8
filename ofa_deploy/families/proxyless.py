"""OFA-ProxylessNAS: ``ofa_proxyless_w13`` (MobileNet blocks without SE, relu6; Cai et al., ICLR 2019 / 2020)."""
from __future__ import annotations

from typing import Any

from ofa_deploy.compat.released import OFA_LICENSE, OFA_NETS_URL, SupernetMeta, WeightsSource
from ofa_deploy.predictors.encoding import MobileNetArchEncoder
from ofa_deploy.spaces import MobileSpace, SearchSpace
from ofa_deploy.spaces.family import ModelFamily, ModelName, register_family
from ofa_deploy.spaces.mobile import mobile_plan_configs
from ofa_deploy.spaces.slots import mobile_slots


def build_supernet(space: SearchSpace) -> Any:
    from ofa_deploy.supernets.proxyless import ProxylessSupernet

    return ProxylessSupernet(space)


FAMILY = register_family(ModelFamily(
    name="proxyless",
    space_class=MobileSpace,
    space_args={"family": "proxyless"},
    names=(
        ModelName("ofa_proxyless_w13", "OFA ProxylessNAS, width 1.3 (ofa_proxyless_d234_e346_k357_w1.3)",
                  {"width_mult": 1.3},
                  WeightsSource(OFA_NETS_URL + "ofa_proxyless_d234_e346_k357_w1.3", "ofa_proxyless_d234_e346_k357_w1.3",
                                meta=SupernetMeta("ofa_proxyless_w13", "ProxylessNASNets", num_params=7_956_882,
                                                  macs_max=1_004_908_032, resolutions=tuple(range(128, 225, 4)),
                                                  license=OFA_LICENSE))),
    ),
    build_supernet=build_supernet,
    plan_configs=mobile_plan_configs,
    slots=mobile_slots,
    encoders={MobileNetArchEncoder.name: MobileNetArchEncoder},
    ofa_lut_schema="proxyless",
    in_context_lut=True,
))
