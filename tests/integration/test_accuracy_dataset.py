"""Accuracy dataset builder: real BN recalibration + holdout top-1, provenance header, resume after interruption."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ofa_deploy.data import load_digits, load_image_folder
from ofa_deploy.errors import ConfigError
from ofa_deploy.predictors.dataset import (
    build_accuracy_dataset, load_accuracy_dataset, sample_architectures, state_dict_sha256,
)


class Interrupt(Exception):
    pass


def test_build_interrupt_and_resume(tmp_path, demo_supernet, digits):
    out = tmp_path / "acc.jsonl"
    before = state_dict_sha256(demo_supernet)
    seen: list[dict] = []

    def stop_after_three(record: dict) -> None:
        seen.append(record)
        if len(seen) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        build_accuracy_dataset(demo_supernet, digits, out, n_subnets=4, resolutions=(16, 24), seed=3, progress=False,
                               on_item=stop_after_three)
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["kind"] == "ofa_deploy.accuracy_dataset" and header["weights_sha256"] == before
    assert header["seed"] == 3 and header["calibration_size"] == 64 and header["dataset"]["name"] == "digits"
    assert len(lines) == 4  # header + 3 measured items, each flushed as it finished
    first = [json.loads(line) for line in lines[1:]]
    with out.open("a") as f:  # a write cut short by a kill
        f.write('{"config":"r16-d1')

    with pytest.raises(ConfigError, match="already exists"):
        build_accuracy_dataset(demo_supernet, digits, out, n_subnets=4, resolutions=(16, 24), seed=3, progress=False)
    new: list[dict] = []
    summary = build_accuracy_dataset(demo_supernet, digits, out, n_subnets=4, resolutions=(16, 24), seed=3,
                                     progress=False, resume=True, on_item=new.append)
    assert summary.n_items == 8 and summary.n_stored_before == 3 and summary.n_evaluated == 5 and len(new) == 5
    assert not {r["config"] for r in new} & {r["config"] for r in first}  # nothing re-evaluated
    loaded = load_accuracy_dataset(out)
    assert len(loaded) == 8 and len({c.to_string() for c in loaded.configs}) == 8
    assert [json.loads(line) for line in out.read_text().splitlines()[1:4]] == first
    assert ((loaded.accuracies >= 0) & (loaded.accuracies <= 1)).all()
    # all resolutions of each sampled architecture are present
    archs = {c.replace(resolution=16).to_string() for c in loaded.configs}
    assert len(archs) == 4
    # a finished build re-run evaluates nothing; the caller's supernet was not modified
    again = build_accuracy_dataset(demo_supernet, digits, out, n_subnets=4, resolutions=(16, 24), seed=3,
                                   progress=False, resume=True)
    assert again.n_evaluated == 0
    assert state_dict_sha256(demo_supernet) == before
    # resuming with other settings is refused
    with pytest.raises(ConfigError, match="seed"):
        build_accuracy_dataset(demo_supernet, digits, out, n_subnets=4, resolutions=(16, 24), seed=4, progress=False,
                               resume=True)


def test_torn_dataset_resumes_without_reevaluating(tmp_path, demo_supernet, digits):
    """A build killed while appending its 2nd item: the 1st is kept, the torn line is cut and measured again."""
    out = tmp_path / "torn.jsonl"
    first: list[dict] = []

    def stop_after_two(record: dict) -> None:
        first.append(record)
        if len(first) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        build_accuracy_dataset(demo_supernet, digits, out, n_subnets=3, resolutions=(16,), seed=5, progress=False,
                               on_item=stop_after_two)
    header, *records = out.read_bytes().splitlines(keepends=True)
    # the format is the previous version's: a compact plain header line, then one compact line per item
    assert header == (json.dumps(json.loads(header), separators=(",", ":")) + "\n").encode()
    assert [json.loads(r) for r in records] == first
    out.write_bytes(header + records[0] + records[1][:-7])  # the 2nd line was cut short by a kill
    new: list[dict] = []
    summary = build_accuracy_dataset(demo_supernet, digits, out, n_subnets=3, resolutions=(16,), seed=5, progress=False,
                                     resume=True, on_item=new.append)
    assert (summary.n_stored_before, summary.n_evaluated) == (1, 2)
    assert new[0]["config"] == first[1]["config"]  # the torn item is measured again
    assert first[0]["config"] not in {r["config"] for r in new}  # the complete item was not evaluated again
    lines = out.read_bytes().splitlines(keepends=True)
    assert lines[:2] == [header, records[0]] and len(lines) == 4  # cut, then two whole lines appended
    loaded = load_accuracy_dataset(out)
    assert [c.to_string() for c in loaded.configs] == [first[0]["config"], *(r["config"] for r in new)]
    assert loaded.accuracies[1] == first[1]["top1"]  # the re-measured item: same value (deterministic)


def test_measurements_are_real_and_deterministic(tmp_path, demo_supernet, digits):
    a = build_accuracy_dataset(demo_supernet, digits, tmp_path / "a.jsonl", n_subnets=2, resolutions=(16,), seed=0,
                               progress=False)
    build_accuracy_dataset(demo_supernet, digits, tmp_path / "b.jsonl", n_subnets=2, resolutions=(16,), seed=0,
                               progress=False)
    ra, rb = load_accuracy_dataset(tmp_path / "a.jsonl"), load_accuracy_dataset(tmp_path / "b.jsonl")
    assert [c.to_string() for c in ra.configs] == [c.to_string() for c in rb.configs]
    np.testing.assert_array_equal(ra.accuracies, rb.accuracies)
    # top-1 values are multiples of 1/len(holdout)
    np.testing.assert_allclose(ra.accuracies * len(digits.holdout), np.round(ra.accuracies * len(digits.holdout)))
    assert a.top1_min <= a.top1_median <= a.top1_max


def test_sample_architectures_is_a_stable_prefix(demo_supernet):
    space = demo_supernet.space
    short, long = sample_architectures(space, 5, seed=1), sample_architectures(space, 12, seed=1)
    assert [c.to_string() for c in long[:5]] == [c.to_string() for c in short]
    assert len({c.to_string() for c in long}) == 12


def test_digits_splits_are_seeded_and_disjoint():
    a, b = load_digits(image_size=16, seed=5), load_digits(image_size=16, seed=5)
    assert a.holdout.fingerprint() == b.holdout.fingerprint()
    assert len(a.train) + len(a.holdout) == 1797 and a.n_classes == 10
    assert a.train.images.shape[1:] == (3, 16, 16) and a.holdout.at(12).shape[-1] == 12
    c = load_digits(image_size=16, seed=6)
    assert c.holdout.fingerprint() != a.holdout.fingerprint()


def test_image_folder_source(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            arr = rng.integers(0, 255, size=(20 + i, 30, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    splits = load_image_folder(tmp_path, image_size=16, holdout_fraction=0.4, calibration_size=3)
    assert splits.train.classes == ("cat", "dog") and splits.n_classes == 2
    assert len(splits.holdout) == 4 and len(splits.train) == 6 and len(splits.calibration) == 3
    assert splits.holdout.images.shape == (4, 3, 16, 16)
    with pytest.raises(ConfigError, match="class subdirectories"):
        load_image_folder(tmp_path / "cat")
