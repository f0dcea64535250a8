"""Static-subnet weights in OFA's key layout (`compat.static_weights`), read by the one reader
(`compat.checkpoint.read_state_dict`): formats, mismatches, bad files, one import path.

Parity with the reference package's static nets (legacy ``mobile_inverted_conv`` checkpoints
included) is in tests/unit/test_net_config.py.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ofa_deploy.compat import net_config, static_weights
from ofa_deploy.compat.static_weights import load_static_weights, to_ofa_state_dict
from ofa_deploy.errors import CheckpointError
from ofa_deploy.nn.layers import SubnetModel
from ofa_deploy.spaces import get_space

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_model() -> SubnetModel:
    space = get_space("ofa_mbv3_w10")
    return SubnetModel(space.walk_layers(space.min_config(), 128))


def test_checkpoint_mismatches_name_the_keys(small_model):
    good = to_ofa_state_dict(small_model)
    wrong_shape = dict(good)
    wrong_shape["classifier.linear.weight"] = torch.zeros(10, 1280)
    shape_msg = r"classifier\.linear\.weight \(model key layers\.15\.linear\.weight\): checkpoint \(10, 1280\)"
    with pytest.raises(CheckpointError, match=shape_msg):
        load_static_weights(copy.deepcopy(small_model), wrong_shape)
    missing = {k: v for k, v in good.items() if not k.startswith("blocks.3.")}
    with pytest.raises(CheckpointError, match=r"missing.*layers\.4\..* \(OFA name blocks\.3\.conv\."):
        load_static_weights(copy.deepcopy(small_model), missing)
    extra = {**good, "blocks.99.conv.point_linear.conv.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"blocks\.99\.conv\.point_linear\.conv\.weight.*strict=False"):
        load_static_weights(copy.deepcopy(small_model), extra)
    supernet_like = {**good, "blocks.1.conv.depth_conv.conv.7to5_matrix": torch.eye(25)}
    with pytest.raises(CheckpointError, match="supernet"):
        load_static_weights(copy.deepcopy(small_model), supernet_like)
    lenient = load_static_weights(copy.deepcopy(small_model), extra, strict=False)
    assert isinstance(lenient, SubnetModel)


def test_two_names_for_one_tensor_are_refused(small_model):
    """A current and a legacy name for the same tensor: the second is unexpected, not silently preferred."""
    good = to_ofa_state_dict(small_model)
    key = next(k for k in good if k.startswith("blocks.1.conv."))
    legacy = key.replace(".conv.", ".mobile_inverted_conv.", 1)
    both = {**good, legacy: torch.zeros_like(good[key])}
    with pytest.raises(CheckpointError, match=rf"1 checkpoint keys have no place in the model, first: {legacy}"):
        load_static_weights(copy.deepcopy(small_model), both)


def test_checkpoint_formats(small_model, tmp_path):
    target = copy.deepcopy(small_model)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in to_ofa_state_dict(small_model).items()}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "dp.pth")
    load_static_weights(target, tmp_path / "dp.pth")
    torch.testing.assert_close(target.layers[-1].linear.weight, state["classifier.linear.weight"])
    ours = copy.deepcopy(small_model)
    load_static_weights(ours, target.state_dict())  # our own layers.<i>.* naming
    torch.testing.assert_close(ours.state_dict(), target.state_dict())


def _truncated(tmp_path: Path, model: SubnetModel) -> Path:
    path = tmp_path / "init"
    torch.save({"state_dict": to_ofa_state_dict(model)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _pickle(tmp_path: Path, model: SubnetModel) -> Path:
    torch.save({"model": object.__new__(_NotAllowed)}, tmp_path / "pickle.pth")
    return tmp_path / "pickle.pth"


def _net_config_as_weights(tmp_path: Path, model: SubnetModel) -> Path:
    path = tmp_path / "net.config"
    path.write_text(json.dumps(net_config.subnet_to_net_config(model)))
    return path


def _tensor_list(tmp_path: Path, model: SubnetModel) -> Path:
    torch.save(list(model.state_dict().values()), tmp_path / "list.pth")
    return tmp_path / "list.pth"


def _non_tensor_entry(tmp_path: Path, model: SubnetModel) -> Path:
    torch.save({"state_dict": {**to_ofa_state_dict(model), "epoch": 3}}, tmp_path / "epoch.pth")
    return tmp_path / "epoch.pth"


def _empty(tmp_path: Path, model: SubnetModel) -> Path:
    (tmp_path / "empty.pth").write_bytes(b"")
    return tmp_path / "empty.pth"


def _directory(tmp_path: Path, model: SubnetModel) -> Path:
    (tmp_path / "ofa_specialized").mkdir()
    return tmp_path / "ofa_specialized"


@pytest.mark.parametrize(("make", "needles"), [
    (_truncated, ["cannot read checkpoint", "truncated, corrupt or not a weights file", "save it again"]),
    (_pickle, ["weights_only=True", "_NotAllowed", "save it again"]),
    (_net_config_as_weights, ["cannot read checkpoint", "not a weights file"]),
    (_tensor_list, ["must be a state dict", "got list"]),
    (_non_tensor_entry, ["must be a state dict", "'epoch' is a int, not a tensor", "save model.state_dict()"]),
    (_directory, ["is a directory", "pass the weights file inside it"]),
    (lambda t, m: t / "nope.pth", ["does not exist", "pass a path to a weights file"]),
    (_empty, ["cannot read checkpoint", "EOFError", "save it again"]),
], ids=["truncated", "foreign-pickle", "json-file", "not-a-mapping", "non-tensor", "directory", "missing", "empty"])
def test_bad_files_name_the_path_and_the_fix(small_model, tmp_path, make, needles):
    path = make(tmp_path, small_model)
    model = copy.deepcopy(small_model)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(CheckpointError) as info:
        load_static_weights(model, path)
    assert repr(str(path)) in str(info.value)
    for needle in needles:
        assert needle in str(info.value)
    assert "weights_only=False" not in str(info.value) and "If you" not in str(info.value)  # not torch's advice
    torch.testing.assert_close(model.state_dict(), before)  # nothing loaded


def test_ofa_specialized_directory_stands_for_its_init(small_model, tmp_path):
    """OFA's release layout ofa_specialized/<id>/{net.config, run.config, init}: the directory loads its init."""
    folder = tmp_path / "ofa_specialized" / "some_net"
    folder.mkdir(parents=True)
    state = {k: torch.randn(v.shape, generator=torch.Generator().manual_seed(i)) if v.is_floating_point() else v
             for i, (k, v) in enumerate(to_ofa_state_dict(small_model).items())}
    torch.save({"state_dict": state}, folder / "init")
    model = load_static_weights(copy.deepcopy(small_model), folder)
    torch.testing.assert_close(to_ofa_state_dict(model), state)


def test_released_supernet_name_is_not_fetched_for_a_static_net(small_model, tmp_path, monkeypatch):
    monkeypatch.setenv("OFA_DEPLOY_CACHE", str(tmp_path))  # nothing cached, and nothing may be downloaded
    with pytest.raises(CheckpointError, match="released weights of supernet ofa_mbv3_w12.*load_supernet_weights"):
        load_static_weights(copy.deepcopy(small_model), "ofa_mbv3_w12")
    assert not any(tmp_path.iterdir())


def test_in_memory_bad_entries_are_named(small_model):
    with pytest.raises(CheckpointError, match="its key 7 is not a string"):
        load_static_weights(copy.deepcopy(small_model), {7: torch.zeros(1)})


def test_one_import_path_and_torch_free_net_config():
    for name in ("load_static_weights", "to_ofa_state_dict"):  # they live in compat.static_weights only
        assert not hasattr(net_config, name) and callable(getattr(static_weights, name))
    with pytest.raises(AttributeError, match="no attribute 'read_state_dict'"):
        net_config.read_state_dict  # noqa: B018 - the one reader lives in compat.checkpoint only
    code = ("import sys, ofa_deploy.compat.net_config as n; n.net_config_to_specs; "
            "assert 'torch' not in sys.modules, 'net.config reading imported torch'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr


class _NotAllowed:
    """A pickled class that torch.load(weights_only=True) must refuse."""
