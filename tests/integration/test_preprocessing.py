"""Preprocessing is recorded in the weights metadata and in every export report, and the data loaders follow it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ofa_deploy.compat.released import preprocessing_of, supernet_weights
from ofa_deploy.compat.specialized import SPECIALIZED_NETS
from ofa_deploy.data import load_digits, load_image_folder
from ofa_deploy.errors import ConfigError
from ofa_deploy.preprocessing import OFA_IMAGENET, Preprocessing


def _changed(prep: Preprocessing) -> Preprocessing:
    return dataclasses.replace(prep, mean=(0.5, 0.4, 0.3), std=(0.25, 0.3, 0.35))


def _denormalise(images: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    return images * torch.tensor(prep.std).view(1, 3, 1, 1) + torch.tensor(prep.mean).view(1, 3, 1, 1)


def test_record_round_trips_and_refuses_bad_values():
    prep = Preprocessing(resolution=160, crop_ratio=0.9, interpolation="bicubic")
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    assert prep.to_dict()["resize_to"] == 178 and OFA_IMAGENET.resize_to == 256
    for bad in ({"std": (0.2, 0.0, 0.2)}, {"mean": (0.5, 0.5)}, {"crop_ratio": 1.5}, {"interpolation": "area"},
                {"resolution": 0}):
        with pytest.raises(ConfigError):
            dataclasses.replace(prep, **bad)
    with pytest.raises(ConfigError, match="unknown keys"):
        Preprocessing.from_dict({**prep.to_dict(), "scale": 2})


def test_weights_metadata_records_preprocessing():
    for name, source in supernet_weights().items():
        assert source.meta.preprocessing == OFA_IMAGENET == preprocessing_of(name)
    counted = [s.meta for s in SPECIALIZED_NETS.values() if s.meta.resolution is not None]
    assert counted and all(m.preprocessing == OFA_IMAGENET.at(m.resolution) for m in counted)
    assert preprocessing_of("not_a_released_name") == OFA_IMAGENET


def test_changed_mean_std_in_metadata_changes_what_the_loaders_produce(tmp_path):
    from PIL import Image

    meta = supernet_weights()["ofa_mbv3_w10"].meta
    changed = dataclasses.replace(meta, preprocessing=_changed(meta.preprocessing))
    a = load_digits(image_size=16, seed=0, preprocessing=meta.preprocessing)
    b = load_digits(image_size=16, seed=0, preprocessing=changed.preprocessing)
    assert not torch.allclose(a.train.images, b.train.images)
    torch.testing.assert_close(_denormalise(b.train.images, changed.preprocessing),
                               _denormalise(a.train.images, meta.preprocessing), rtol=0, atol=1e-5)
    assert b.describe()["preprocessing"]["mean"] == [0.5, 0.4, 0.3]

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    folder = [load_image_folder(tmp_path, image_size=16, holdout_fraction=0.4, calibration_size=2, preprocessing=p)
              for p in (meta.preprocessing, changed.preprocessing)]
    torch.testing.assert_close(_denormalise(folder[1].train.images, changed.preprocessing),
                               _denormalise(folder[0].train.images, meta.preprocessing), rtol=0, atol=1e-5)
    assert not torch.allclose(folder[0].train.images, folder[1].train.images)
    wider = load_image_folder(tmp_path, image_size=16, holdout_fraction=0.4, calibration_size=2,
                              preprocessing=dataclasses.replace(meta.preprocessing, crop_ratio=1.0))
    assert not torch.allclose(wider.train.images, folder[0].train.images)  # the crop comes from the record too


def test_every_export_report_records_preprocessing_and_the_loader_reads_it(tiny_space, tmp_path):
    from ofa_deploy.export import ExportOptions, export, load_report
    from ofa_deploy.nn.layers import SubnetModel
    from tests.export_helpers import randomize_for_parity

    cfg = tiny_space.min_config(32)
    model = randomize_for_parity(SubnetModel(tiny_space.walk_layers(cfg)), seed=1, input_shape=(4, 3, 32, 32))
    default = export(model, tmp_path / "default", format="onnx", input_shape=(1, 3, 32, 32))
    assert load_report(default.out_dir).preprocessing == OFA_IMAGENET.at(32).to_dict()

    changed = _changed(OFA_IMAGENET)
    onnx = export(model, tmp_path / "onnx", format="onnx",
                  options=ExportOptions(input_shape=(1, 3, 32, 32), preprocessing=changed))
    ort = export(onnx.path("model"), tmp_path / "ort", format="ort")  # inherits the source export's record
    for report in (onnx, ort):
        assert load_report(report.out_dir).preprocessing == changed.at(32).to_dict()

    recorded = Preprocessing.from_dict(load_report(ort.out_dir).preprocessing)
    a = load_digits(image_size=32, preprocessing=OFA_IMAGENET)
    b = load_digits(image_size=recorded.resolution, preprocessing=recorded)
    assert not torch.allclose(a.holdout.images, b.holdout.images)
    torch.testing.assert_close(_denormalise(b.holdout.images, recorded), _denormalise(a.holdout.images, OFA_IMAGENET),
                               rtol=0, atol=1e-5)
