"""LatencyPredictor / MacsPredictor: walk sums, vectorised gene path, OFA parity on the Note10 and Pixel1 tables."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from ofa_deploy.compat.ofa_lut import load_ofa_lut
from ofa_deploy.errors import ConfigError, LatencyTableMissError
from ofa_deploy.predictors.latency import EfficiencyPredictor, LatencyPredictor, MacsPredictor, ParamsPredictor
from ofa_deploy.predictors.macs import count_subnet
from ofa_deploy.tables.latency import LatencyStats, LatencyTable
from ofa_deploy.spaces import MobileSpace, get_space

NOTE10_RES = (160, 176, 192, 208, 224)


@pytest.fixture(scope="module")
def predictor(w12, note10):
    return LatencyPredictor(w12, note10)


def _ref_table(cls, path):
    """The reference table class, fed with yaml.safe_load: its own __init__ calls yaml.load without a Loader."""

    class Table(cls):
        def __init__(self, lut_path):  # no download, no PyYAML-6-incompatible yaml.load
            self.lut = yaml.safe_load(lut_path.read_text())

    return Table(path)


def test_reference_values_note10(predictor, w12):
    assert predictor.covered_resolutions() == NOTE10_RES
    assert round(float(predictor.predict([w12.max_config(224)])[0]), 1) == 92.4
    assert round(float(predictor.predict([w12.min_config(224)])[0]), 1) == 17.8
    assert round(float(predictor.predict([w12.min_config(160)])[0]), 1) == 9.9


def test_prediction_is_the_sum_of_its_entries(predictor, note10, w12):
    cfg = w12.sample(3, resolution=192)
    rows = predictor.breakdown(cfg)
    assert [spec for spec, _ in rows] == w12.walk_layers(cfg)
    assert all(ms == note10.lookup(spec, 192).mean for spec, ms in rows)
    assert predictor.predict([cfg])[0] == pytest.approx(sum(ms for _, ms in rows), rel=1e-15)


def test_matches_reference_mbv3_latency_table(ofa_ref, ofa_reference_dir, predictor, w12):
    from ofa.nas.efficiency_predictor.latency_lookup_table import MBv3LatencyTable

    ref_tables = {r: _ref_table(MBv3LatencyTable, ofa_reference_dir / f"note10_{r}_lookup_table.yaml")
                  for r in NOTE10_RES}
    net = ofa_ref.OFAMobileNetV3(width_mult=1.2, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    rng = np.random.default_rng(7)
    cfgs = [w12.sample(rng, resolution=int(rng.choice(NOTE10_RES))) for _ in range(50)]
    ours = predictor.predict(cfgs)
    theirs = []
    for cfg in cfgs:
        arch = cfg.to_ofa()
        net.set_active_subnet(ks=arch["ks"], e=arch["e"], d=arch["d"])
        theirs.append(ref_tables[cfg.resolution].predict_network_latency_given_config(
            net.get_active_net_config(), cfg.resolution))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert np.ptp(theirs) > 20  # a spread of subnets, not one config 50 times


def test_matches_reference_proxyless_table_on_pixel1(ofa_ref, ofa_reference_dir):
    from ofa.nas.efficiency_predictor.latency_lookup_table import ProxylessNASLatencyTable

    path = ofa_reference_dir / "proxyless_pixel1_mobile_trim.yaml"
    space = MobileSpace(name="proxylessnas_mobile_w10", family="proxyless", width_mult=1.0, expand_ratios=(3, 6),
                        resolutions=(224,))
    predictor = LatencyPredictor(space, load_ofa_lut(path, space, device="pixel1"))
    ref = _ref_table(ProxylessNASLatencyTable, path)
    net = ofa_ref.OFAProxylessNASNets(width_mult=1.0, ks_list=[3, 5, 7], expand_ratio_list=[3, 6], depth_list=[2, 3, 4])
    cfgs = space.sample_batch(20, 3)
    theirs = []
    for cfg in cfgs:
        arch = cfg.to_ofa()
        net.set_active_subnet(ks=arch["ks"], e=arch["e"], d=arch["d"])
        theirs.append(ref.predict_network_latency_given_config(net.get_active_net_config(), 224))
    np.testing.assert_allclose(predictor.predict(cfgs), theirs, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(predictor.predict_genes(space.to_genes(cfgs)), predictor.predict(cfgs))


def test_predict_genes_equals_walk_sum_on_1000_configs(predictor, w12):
    sub = get_space("ofa_mbv3_w12", resolutions=NOTE10_RES)
    pred = LatencyPredictor(sub, predictor.table)
    genes = sub.sample_genes(1000, 11)
    np.testing.assert_array_equal(pred.predict_genes(genes), pred.predict(sub.from_genes(genes)))
    macs = MacsPredictor(w12)
    full = w12.sample_genes(1000, 12)
    np.testing.assert_array_equal(macs.predict_genes(full), macs.predict(w12.from_genes(full)))


def test_macs_and_params_match_the_walk_counter(w12):
    macs, params = MacsPredictor(w12), ParamsPredictor(w12)
    cfgs = [w12.max_config(224), w12.min_config(224), w12.min_config(160)]
    assert np.round(macs.predict(cfgs), 1).tolist() == [843.1, 193.1, 100.3]
    genes = w12.to_genes(cfgs)
    for cfg, m, p in zip(cfgs, macs.predict_genes(genes), params.predict_genes(genes)):
        cost = count_subnet(w12, cfg)
        assert m == pytest.approx(cost.macs / 1e6, rel=1e-12) and p == pytest.approx(cost.params / 1e6, rel=1e-12)
    resnet = get_space("ofa_resnet50")  # ResNet gather tables: width genes couple neighbouring slots
    rg = resnet.sample_genes(200, 0)
    rcfgs = resnet.from_genes(rg)
    rmacs = MacsPredictor(resnet)
    np.testing.assert_array_equal(rmacs.predict_genes(rg), rmacs.predict(rcfgs))
    np.testing.assert_allclose(rmacs.predict_genes(rg[:5]), [count_subnet(resnet, c).macs / 1e6 for c in rcfgs[:5]],
                               rtol=1e-12)


def test_misses_raise_named_errors(predictor, note10, w12):
    with pytest.raises(LatencyTableMissError, match=r"Conv-input:200x200x3.*ofa-deploy profile build"):
        predictor.predict([w12.max_config(200)])
    w10 = get_space("ofa_mbv3_w10")
    with pytest.raises(LatencyTableMissError, match=r"Conv-input:224x224x3-output:112x112x16.*--supernet ofa_mbv3_w10"):
        LatencyPredictor(w10, note10).predict([w10.max_config(224)])
    # gene path: rows at covered resolutions work, a requested uncovered one raises for its first layer
    genes = w12.to_genes([w12.max_config(224), w12.min_config(176)])
    assert predictor.predict_genes(genes).shape == (2,)
    with pytest.raises(LatencyTableMissError, match=r"conv 3->24 @164"):
        predictor.predict_genes(w12.to_genes([w12.max_config(224), w12.max_config(164)]))
    with pytest.raises(ConfigError, match="gene column 0"):
        predictor.predict_genes(np.full((1, len(w12.genes())), 99))


def test_calibration_fit_recovers_a_linear_map(w12, note10):
    pred = LatencyPredictor(get_space("ofa_mbv3_w12", resolutions=NOTE10_RES), note10)
    cfgs = pred.space.sample_batch(30, 5)
    raw = pred.predict(cfgs)
    noise = np.random.default_rng(0).normal(0, 0.01, len(raw))
    fit = pred.fit_calibration(cfgs, 1.5 * raw + 2.0 + noise)
    assert fit.calibration.scale == pytest.approx(1.5, abs=1e-3) and fit.calibration.offset == pytest.approx(2.0, abs=0.05)
    assert fit.mae_after_ms < 0.02 < fit.mae_before_ms
    genes = pred.space.to_genes(cfgs)
    np.testing.assert_array_equal(pred.predict_genes(genes), pred.predict(cfgs))
    with pytest.raises(ConfigError):
        pred.fit_calibration(cfgs[:1], [1.0])


def test_stat_selector_and_protocol(w12):
    specs = w12.walk_layers(w12.min_config(128))
    table = LatencyTable({s: LatencyStats(median=1.0, mean=2.0, std=0.0, p90=3.0, n=5) for s in specs})
    pred = LatencyPredictor(w12, table)
    n = len(specs)
    assert pred.predict([w12.min_config(128)])[0] == n
    assert LatencyPredictor(w12, table.copy(stat="p90")).predict([w12.min_config(128)])[0] == 3 * n
    assert isinstance(pred, EfficiencyPredictor) and isinstance(MacsPredictor(w12), EfficiencyPredictor)
    assert pred.unit == "ms" and MacsPredictor(w12).unit == "MMACs"


def test_resnet_latency_gene_path_with_a_measured_style_table():
    from ofa_deploy.spaces.slots import SlotTables

    space = get_space("ofa_resnet50", resolutions=(160, 192))
    rng = np.random.default_rng(1)
    specs = {s for r in space.resolutions for s in SlotTables(space).specs_at(r)}
    table = LatencyTable({s: LatencyStats.from_samples(rng.uniform(0.1, 3.0, 7)) for s in specs})
    pred = LatencyPredictor(space, table)
    assert pred.check_coverage() == {160: [], 192: []}
    genes = space.sample_genes(300, 2)
    np.testing.assert_array_equal(pred.predict_genes(genes), pred.predict(space.from_genes(genes)))
