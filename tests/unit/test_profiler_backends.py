"""Timing backends: real ORT / torch / TVM runs, unavailable hardware, no mutation of the caller's model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ofa_deploy.errors import BackendUnavailableError, ConfigError, UnknownNameError
from ofa_deploy.export.onnx import torch_to_onnx
from ofa_deploy.nn.layers import build_layer
from ofa_deploy.profiling.timing.backends import create_backend, make_backend
from ofa_deploy.profiling.hardware import HardwareProfile
from ofa_deploy.spaces import LayerSpec

SPEC = LayerSpec(kind="mbconv", role="block", in_channels=8, out_channels=8, in_size=12, out_size=12, kernel_size=3,
                 mid_channels=24, expand=True, se=True, act="h_swish", residual=True)
SHAPE = (1, 8, 12, 12)


@pytest.fixture(scope="module")
def layer_onnx(tmp_path_factory):
    torch.manual_seed(0)
    module = build_layer(SPEC).eval()
    path = torch_to_onnx(module, tmp_path_factory.mktemp("m") / "layer.onnx", input_shape=SHAPE, dynamic_batch=False)
    return module, path


def _reference(module, runner_input):
    with torch.no_grad():
        return module(torch.from_numpy(runner_input)).numpy()


def test_ort_runner_reuses_bound_buffers_and_matches_torch(layer_onnx):
    module, path = layer_onnx
    backend = create_backend(HardwareProfile.load("ort-cpu-1t"))
    with backend.prepare(path, SHAPE) as runner:
        runner.run()
        first = runner.output().copy()
        runner.run()
        np.testing.assert_array_equal(first, runner.output())
        np.testing.assert_allclose(first, _reference(module, runner._x), atol=1e-4)
        assert runner.natural_clock == "thread"
    assert make_backend("ort", threads=2).prepare(path, SHAPE).natural_clock == "wall"


@pytest.mark.parametrize("profile", ["ort-cuda", "ort-mobile-xnnpack"])
def test_unavailable_ort_providers_raise(profile):
    with pytest.raises(BackendUnavailableError, match="not available on this machine"):
        create_backend(HardwareProfile.load(profile))


@pytest.mark.parametrize("provider", ["nnapi", "coreml", "CUDAExecutionProvider"])
def test_unavailable_providers_by_name(provider):
    with pytest.raises(BackendUnavailableError, match="provider"):
        make_backend("onnxruntime", provider=provider)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_torch_cuda_unavailable():
    with pytest.raises(BackendUnavailableError, match="CUDA is not available"):
        make_backend("torch", device="cuda")


def test_unknown_backend_and_wrong_model_type(layer_onnx):
    module, path = layer_onnx
    with pytest.raises(UnknownNameError, match="onnxruntime"):
        make_backend("onnxrunt")
    with pytest.raises(ConfigError, match="model file"):
        make_backend("ort").prepare(module, SHAPE)
    with pytest.raises(ConfigError, match="nn.Module"):
        make_backend("torch").prepare(path, SHAPE)


def test_torch_backend_leaves_the_callers_model_alone(layer_onnx):
    module, _ = layer_onnx
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    threads = torch.get_num_threads()
    runner = create_backend(HardwareProfile.load("torch-cpu")).prepare(module, SHAPE)
    runner.run()
    out = runner.output()
    runner.close()
    assert module.training
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert torch.get_num_threads() == threads
    module.eval()
    np.testing.assert_allclose(out, _reference(module, runner._x.numpy()), atol=1e-5)


def test_tvm_backend_compiles_and_matches_ort(layer_onnx):
    module, path = layer_onnx
    pytest.importorskip("tvm")
    backend = create_backend(HardwareProfile.load("tvm-cpu"))
    with backend.prepare(path, SHAPE) as runner:
        runner.run()
        np.testing.assert_allclose(runner.output(), _reference(module, runner._x.numpy()), atol=1e-4)
