"""A model family declared entirely in this file runs through the whole toolchain without touching the package.

`TinySpace` (a stem, two elastic stages of MBConv blocks, a pool and a classifier), `TinySupernet` (built from the
existing dynamic layers), `TinyEncoder` and the layer-plan rule are registered as one `ModelFamily` through the
public `register_family`; the test then goes sample → extract → ONNX export (validated, input-dependent outputs)
→ LUT plan → MACs → a tiny LUT build on ort-cpu-1t → latency prediction → accuracy encoding, and unregisters the
family at the end so no registry state leaks into other tests.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ofa_deploy.errors import ConfigError
from ofa_deploy.nn.dynamic_layers import DynamicMBConv, ResidualBlock
from ofa_deploy.predictors.encoding import ArchEncoder
from ofa_deploy.spaces import PlacedLayer, SearchSpace, SubnetConfig, make_divisible
from ofa_deploy.spaces.base import Gene, LayerChain, check_length
from ofa_deploy.spaces.family import ModelFamily, ModelName, register_family, unregister_family
from ofa_deploy.spaces.layer_spec import conv_out_size
from ofa_deploy.supernets.base import Supernet
from tests.export_helpers import assert_close_scaled, assert_input_dependent, randomize_for_parity


class TinySpace(SearchSpace):
    """Stem conv (stride 2), two stages of MBConv blocks (kernel and expand ratio per block, depth per stage),
    global pool, classifier."""

    family = "tiny"

    def __init__(self, *, name: str, kernel_sizes: Sequence[int] = (3, 5), expand_ratios: Sequence[float] = (2, 3),
                 depths: Sequence[int] = (1, 2), resolutions: Sequence[int] = (32, 40), n_classes: int = 10) -> None:
        self.name = name
        self.kernel_sizes, self.expand_ratios = tuple(kernel_sizes), tuple(float(e) for e in expand_ratios)
        self.depths, self.resolutions, self.n_classes = tuple(depths), tuple(resolutions), int(n_classes)
        self.stem_width, self.stages = 8, ((16, 2), (24, 2))  # (width, stride of the first block)
        self.n_blocks = len(self.stages) * max(self.depths)
        self._genes = self._build_genes()

    def constructor_args(self) -> dict[str, Any]:
        return {"name": self.name, "kernel_sizes": list(self.kernel_sizes), "expand_ratios": list(self.expand_ratios),
                "depths": list(self.depths), "resolutions": list(self.resolutions), "n_classes": self.n_classes}

    def _build_genes(self) -> tuple[Gene, ...]:
        return (Gene("resolution", tuple(float(r) for r in self.resolutions)),
                *(Gene(f"depths[{s}]", tuple(float(d) for d in self.depths)) for s in range(len(self.stages))),
                *(Gene(f"kernel_sizes[{b}]", tuple(float(k) for k in self.kernel_sizes)) for b in range(self.n_blocks)),
                *(Gene(f"expand_ratios[{b}]", self.expand_ratios) for b in range(self.n_blocks)))

    def config_from_values(self, values: Sequence[float]) -> SubnetConfig:
        n_s, n_b = len(self.stages), self.n_blocks
        return SubnetConfig(resolution=values[0], depths=values[1:1 + n_s], kernel_sizes=values[1 + n_s:1 + n_s + n_b],
                            expand_ratios=values[1 + n_s + n_b:])

    def config_values(self, cfg: SubnetConfig) -> tuple[float, ...]:
        return (float(cfg.resolution), *map(float, cfg.depths), *map(float, cfg.kernel_sizes), *cfg.expand_ratios)

    def _check_shape(self, cfg: SubnetConfig) -> None:
        check_length(self.name, "depths", cfg.depths, len(self.stages), "stage")
        check_length(self.name, "kernel_sizes", cfg.kernel_sizes, self.n_blocks, "block")
        check_length(self.name, "expand_ratios", cfg.expand_ratios, self.n_blocks, "block")

    def count_subnets(self) -> float:
        per_block = len(self.kernel_sizes) * len(self.expand_ratios)
        return len(self.resolutions) * float(sum(per_block**d for d in self.depths)) ** len(self.stages)

    def walk(self, cfg: SubnetConfig, resolution: int | None = None) -> list[PlacedLayer]:
        self.validate(cfg)
        chain = LayerChain(resolution or cfg.resolution)
        chain.add("stem", kind="conv", role="stem", in_channels=3, out_channels=self.stem_width,
                  out_size=conv_out_size(chain.size, 2), kernel_size=3, stride=2, act="relu")
        channels, depth_max = self.stem_width, max(self.depths)
        for s, (width, first_stride) in enumerate(self.stages):
            for pos in range(cfg.depths[s]):
                block, stride = s * depth_max + pos, first_stride if pos == 0 else 1
                chain.add(f"blocks.{block}", kind="mbconv", role="block", in_channels=channels, out_channels=width,
                          out_size=conv_out_size(chain.size, stride), kernel_size=cfg.kernel_sizes[block],
                          stride=stride, mid_channels=make_divisible(round(channels * cfg.expand_ratios[block]), 8),
                          expand=True, act="relu", residual=stride == 1 and channels == width)
                channels = width
        chain.add(None, kind="avgpool", role="pool", in_channels=channels, out_channels=channels, out_size=1)
        chain.add("classifier", kind="linear", role="classifier", in_channels=channels, out_channels=self.n_classes,
                  out_size=1, bias=True)
        return chain.layers


def tiny_plan_configs(space: TinySpace, resolution: int) -> Iterator[SubnetConfig]:
    """Full depth, one uniform (kernel, expand) pair per config: every block variant appears."""
    top = space.max_config(resolution)
    for k, e in itertools.product(space.kernel_sizes, space.expand_ratios):
        yield top.replace(kernel_sizes=(k,) * space.n_blocks, expand_ratios=(e,) * space.n_blocks)


class TinySupernet(Supernet):
    """Static stem and classifier, elastic MBConv blocks (`DynamicMBConv`)."""

    families = ("tiny",)

    def _make_module(self, placed: PlacedLayer) -> nn.Module:
        if not (placed.source or "").startswith("blocks."):
            return self._static(placed.spec)
        conv = DynamicMBConv(dataclasses.replace(placed.spec, residual=False), kernel_sizes=self.space.kernel_sizes,
                             bn_eps=self.bn_eps, bn_momentum=self.bn_momentum)
        return ResidualBlock(conv, shortcut=placed.spec.residual)


class TinyEncoder(ArchEncoder):
    """One one-hot group per gene (the resolution first)."""

    name = "tiny_onehot"

    def __init__(self, space: SearchSpace, *, resolutions: Sequence[int] | None = None) -> None:
        super().__init__(space, resolutions=resolutions)
        sizes = space.gene_sizes()[1:]
        self._offsets = len(self.resolutions) + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.n_dim = len(self.resolutions) + int(sizes.sum())

    def _hot_columns(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols = np.concatenate([self._res_slot[genes[:, :1]], self._offsets + genes[:, 1:]], axis=1)
        return cols, np.ones(cols.shape, dtype=bool)

    def decode(self, features: np.ndarray) -> list[SubnetConfig]:
        features = np.atleast_2d(features)
        res = self._decode_resolution(features, 0)
        out = []
        for row, r in zip(features, res):
            values = [float(r)] + [gene.choices[int(np.argmax(row[off:off + len(gene.choices)]))]
                                   for gene, off in zip(self.space.genes()[1:], self._offsets)]
            out.append(self.space.config_from_values(values))
        return out


FAMILY = ModelFamily(
    name="tiny", space_class=TinySpace, names=(ModelName("tiny_w10", "a toy MobileNet-like family (test only)"),),
    build_supernet=TinySupernet, plan_configs=tiny_plan_configs, encoders={TinyEncoder.name: TinyEncoder})


@pytest.fixture
def tiny():
    register_family(FAMILY)
    try:
        yield FAMILY
    finally:
        unregister_family("tiny")


def test_registration_is_public_and_reversible():
    from ofa_deploy.spaces import get_space, list_spaces

    other = dataclasses.replace(FAMILY, name="tiny_other", names=(ModelName("tiny_other_w10", "another toy"),))
    assert "tiny_other_w10" not in list_spaces()
    register_family(other)
    try:
        assert "tiny_other_w10" in list_spaces()
        with pytest.raises(ConfigError, match="must carry its name"):  # TinySpace says it is of family "tiny"
            get_space("tiny_other_w10")
        with pytest.raises(ConfigError, match="already registered"):
            register_family(other)
        with pytest.raises(ConfigError, match="already registered by family 'mbv3'"):
            register_family(dataclasses.replace(FAMILY, name="tiny_clash", names=(ModelName("ofa_mbv3_w10", "x"),)))
    finally:
        unregister_family("tiny_other")
    assert "tiny_other_w10" not in list_spaces()


def test_toy_family_runs_through_the_toolchain(tiny, profile, tmp_path):
    from ofa_deploy.export import export_model
    from ofa_deploy.export.runners import ort_runner
    from ofa_deploy.predictors.accuracy import AccuracyPredictor
    from ofa_deploy.predictors.encoding import default_encoder
    from ofa_deploy.predictors.latency import LatencyPredictor
    from ofa_deploy.predictors.macs import count_module, count_subnet
    from ofa_deploy.profiling.builder import build_lut
    from ofa_deploy.profiling.plan import make_plan
    from ofa_deploy.profiling.timing.timer import TimerSettings
    from ofa_deploy.spaces import get_space, space_from_dict, space_to_dict
    from ofa_deploy.spaces.slots import SlotTables
    from ofa_deploy.supernets import create_supernet
    from ofa_deploy.tables.latency import LatencyTable

    # space: by name, serialised through the family, sampled with a seed
    space = get_space("tiny_w10")
    assert isinstance(space, TinySpace) and space_to_dict(space_from_dict(space_to_dict(space))) == space_to_dict(space)
    cfgs = space.sample_batch(6, rng=1, resolution=32)
    assert cfgs == space.sample_batch(6, rng=1, resolution=32)

    # supernet built by the family; extraction equals the supernet under the config
    supernet = create_supernet("tiny_w10")
    assert isinstance(supernet, TinySupernet)
    cfg = cfgs[0]
    supernet.set_active(cfg)
    randomize_for_parity(supernet, seed=2, input_shape=(4, 3, 32, 32))
    model = supernet.extract(cfg).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = assert_input_dependent(model(x))
        assert_close_scaled(supernet(x), want, rel=1e-5)

    # ONNX export, validated, and the exported model's outputs depend on the input too
    report = export_model(model, tmp_path / "onnx", format="onnx", input_shape=(1, 3, 32, 32))
    assert report.passed
    got = torch.from_numpy(ort_runner(report.path("model"))(x.numpy())[0])
    assert_close_scaled(assert_input_dependent(got), want, rel=1e-4)

    # MACs from the walk agree with the hook counter on the extracted module
    assert count_subnet(space, cfg).macs == count_module(model, (1, 3, 32, 32)).macs > 0

    # the family's layer-plan rule covers every layer of sampled subnets
    plan = make_plan(space, [32])
    planned = {item.spec for item in plan}
    assert all(spec in planned for c in space.sample_batch(40, rng=3, resolution=32) for spec in space.walk_layers(c))

    # a tiny LUT on ort-cpu-1t, and latency predicted from it (no gather tables: the per-config path)
    fast = TimerSettings(warmup=1, repeats=3, rounds=2, anchor_every=8, seed=0)
    built = build_lut(space, [32], profile, tmp_path / "tiny.lut.json", timer=fast, progress=False,
                      model_dir=tmp_path / "models", calibration_subnets=0)
    table = LatencyTable.load(built.path)
    assert built.measured >= len(plan) == len(table) and table.provenance.profile_name == "ort-cpu-1t"
    with pytest.raises(ConfigError, match="no gather-table rule"):
        SlotTables(space)
    latency = LatencyPredictor(space, table)
    ms = latency.predict(cfgs)
    assert ms.shape == (6,) and np.all(np.isfinite(ms)) and np.all(ms > 0)
    np.testing.assert_allclose(latency.predict_genes(space.to_genes(cfgs)), ms, rtol=1e-12)

    # accuracy encoding through the family's encoder, and a predictor that saves and loads by family
    encoder = default_encoder(space)
    assert isinstance(encoder, TinyEncoder)
    assert encoder.decode(encoder.encode(cfgs)) == cfgs
    predictor = AccuracyPredictor(encoder)
    loaded = AccuracyPredictor.load(predictor.save(tmp_path / "predictor"))
    assert isinstance(loaded.encoder, TinyEncoder) and loaded.space.family == "tiny"
    np.testing.assert_array_equal(loaded.predict(cfgs), predictor.predict(cfgs))
