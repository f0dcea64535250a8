"""LatencyStats / LatencyTable files and the OFA YAML codec (Note10 + Pixel1 tables)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from ofa_deploy.compat.ofa_lut import load_ofa_lut, save_ofa_lut
from ofa_deploy.errors import ConfigError, LatencyTableMissError
from ofa_deploy.tables.latency import SCHEMA_VERSION, LatencyStats, LatencyTable, Provenance
from ofa_deploy.spaces import MobileSpace, get_space
from ofa_deploy.spaces.ofa_keys import ofa_key, specs_from_key

NOTE10_RES = (160, 176, 192, 208, 224)


@pytest.fixture(scope="module")
def proxyless_mobile():
    """ProxylessNAS-mobile (w1.0, expand {3, 6}) at 224: the space the Pixel1 table was measured for."""
    return MobileSpace(name="proxylessnas_mobile_w10", family="proxyless", width_mult=1.0, expand_ratios=(3, 6),
                       resolutions=(224,))


def _small_table(space, cfg) -> LatencyTable:
    specs = space.walk_layers(cfg)
    rng = np.random.default_rng(0)
    return LatencyTable({s: LatencyStats.from_samples(rng.uniform(0.5, 2.0, 20)) for s in specs},
                        provenance=Provenance(profile_name="ort-cpu-1t", supernet=space.name, device="test"))


# ---- LatencyStats ------------------------------------------------------------------------------
def test_stats_from_samples():
    s = LatencyStats.from_samples(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert (s.median, s.mean, s.n) == (3.0, 22.0, 5)
    assert s.p90 == pytest.approx(61.6)
    assert s.std == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    assert LatencyStats.from_samples([2.5]).std == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, -1.0], [math.nan]])
def test_stats_reject_bad_samples(bad):
    with pytest.raises(ConfigError):
        LatencyStats.from_samples(bad)


def test_stats_value_selector():
    s = LatencyStats(median=None, mean=1.0, std=0.1, p90=None, n=3)
    assert s.value("mean") == 1.0
    with pytest.raises(ConfigError, match="median"):
        s.value("median")
    with pytest.raises(ConfigError, match="expected one of"):
        s.value("max")


# ---- LatencyTable --------------------------------------------------------------------------------
def test_json_round_trip_is_identical_and_atomic(tmp_path, w12):
    table = _small_table(w12, w12.max_config(224))
    spec = next(iter(table))
    table.set(spec, LatencyStats(median=9.0, mean=9.0, std=0.0, p90=9.0, n=1), resolution=176)
    path = table.save(tmp_path / "sub" / "t.json")
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.json"]  # no temp file left behind
    loaded = LatencyTable.load(path)
    assert loaded == table and len(loaded) == len(table)
    assert loaded.lookup(spec, 176).mean == 9.0 and loaded.lookup(spec, 224) == table[spec]
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["entries"][0]["layer"]["kind"] == "conv"


def test_newer_schema_version_is_a_clear_error(tmp_path, w12):
    path = _small_table(w12, w12.min_config(160)).save(tmp_path / "t.json")
    data = json.loads(path.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="newer than this ofa-deploy understands"):
        LatencyTable.load(path)
    path.write_text("{}")
    with pytest.raises(ConfigError, match="not an ofa-deploy latency table"):
        LatencyTable.load(path)


def test_miss_names_layer_key_and_command(w12):
    table = _small_table(w12, w12.max_config(224))
    spec = w12.walk_layers(w12.min_config(128))[0]
    assert table.get(spec) is None and spec not in table
    with pytest.raises(LatencyTableMissError) as info:
        table[spec]
    text = str(info.value)
    assert spec.short() in text and "Conv-input:128x128x3-output:64x64x24" in text
    assert "ofa-deploy profile build --profile ort-cpu-1t --supernet ofa_mbv3_w12" in text


def test_merge_and_stat(w12):
    a = _small_table(w12, w12.max_config(224))
    b = _small_table(w12, w12.min_config(160))
    spec = next(iter(a))
    b[spec] = LatencyStats(median=5.0, mean=5.0, std=0.0, p90=5.0, n=1)
    assert a.merge(b)[spec].mean == 5.0 and a.merge(b, on_conflict="self")[spec] == a[spec]
    assert len(a.merge(b)) == len(set(a) | set(b))
    with pytest.raises(ConfigError, match="merge conflict"):
        a.merge(b, on_conflict="error")
    assert a.latency(spec) == a[spec].median and a.copy(stat="p90").latency(spec) == a[spec].p90
    with pytest.raises(ConfigError):
        LatencyTable(stat="max")


# ---- OFA YAML codec ------------------------------------------------------------------------------
def test_note10_keys_round_trip_through_layer_specs(ofa_reference_dir, w12):
    for r in NOTE10_RES:
        keys = yaml.safe_load((ofa_reference_dir / f"note10_{r}_lookup_table.yaml").read_text())
        assert len(keys) == 96
        for key in keys:
            (spec,) = specs_from_key(key, w12)
            assert ofa_key(spec, "mbv3") == key


def test_note10_covers_every_w12_layer_at_its_resolutions(note10, w12):
    from ofa_deploy.predictors.latency import LatencyPredictor

    coverage = LatencyPredictor(w12, note10).check_coverage(NOTE10_RES + (200,))
    assert all(not coverage[r] for r in NOTE10_RES)
    assert coverage[200] and coverage[200][0].role == "stem"
    assert note10.stat == "mean" and note10.provenance.device == "note10"
    assert note10.scoped_resolutions  # OFA timed some shared layers differently per resolution file


def test_ofa_yaml_round_trip_note10(tmp_path, note10, w12, ofa_reference_dir):
    written = save_ofa_lut(note10, tmp_path, w12)
    assert sorted(written) == list(NOTE10_RES)
    again = load_ofa_lut(tmp_path, w12)
    assert list(again.all_items()) == list(note10.all_items())
    by_res = load_ofa_lut({r: tmp_path for r in NOTE10_RES}, w12)  # OFA's {r: dir} form
    assert list(by_res.all_items()) == list(note10.all_items())
    for r, path in written.items():  # the files themselves carry the same rows as OFA's
        ours = yaml.safe_load(path.read_text())
        theirs = yaml.safe_load((ofa_reference_dir / f"note10_{r}_lookup_table.yaml").read_text())
        assert ours == theirs


def test_pixel1_table_is_proxylessnas_mobile(ofa_reference_dir, proxyless_mobile, tmp_path):
    path = ofa_reference_dir / "proxyless_pixel1_mobile_trim.yaml"
    table = load_ofa_lut(path, proxyless_mobile, device="pixel1")
    rows = yaml.safe_load(path.read_text())
    assert len(table) == len(rows) + 1  # Logits -> pool (timed) + classifier (zero)
    pool = next(s for s in table if s.kind == "avgpool")
    cls = next(s for s in table if s.kind == "linear")
    assert table[pool].mean == rows["Logits-input:7x7x1280-output:1000"]["mean"] and table[cls].mean == 0.0
    from ofa_deploy.predictors.latency import LatencyPredictor

    assert LatencyPredictor(proxyless_mobile, table).check_coverage() == {224: []}
    written = save_ofa_lut(table, tmp_path, proxyless_mobile)
    back = yaml.safe_load(written[224].read_text())
    assert back.keys() == rows.keys()
    for key, row in rows.items():
        assert back[key]["mean"] == row["mean"] and back[key]["count"] == row["count"]
        assert back[key]["var"] == pytest.approx(row["var"], rel=1e-12)


def test_pixel1_table_does_not_fit_ofa_proxyless_w13(ofa_reference_dir):
    """The Pixel1 table is ProxylessNAS mobile at width 1.0: loading it for w1.3 names the width mismatch."""
    space = get_space("ofa_proxyless_w13")
    with pytest.raises(ConfigError, match="first conv has 32 output channels, the stem of ofa_proxyless_w13 has 40"):
        load_ofa_lut(ofa_reference_dir / "proxyless_pixel1_mobile_trim.yaml", space)


def test_bad_ofa_keys_are_named(w12):
    with pytest.raises(ConfigError, match="unknown layer type 'Fancy'"):
        specs_from_key("Fancy-input:7x7x3-output:7x7x3", w12)
    with pytest.raises(ConfigError, match="missing"):
        specs_from_key("expanded_conv-input:7x7x3-output:7x7x3-expand:3", w12)
    with pytest.raises(ConfigError, match="MobileNetV3 and ProxylessNAS"):
        specs_from_key("Conv-input:224x224x3-output:112x112x24", get_space("ofa_resnet50"))
