"""Accuracy predictor: an architecture encoder + OFA's MLP, batched on gene arrays.

The model is OFA's: ``n_layers`` × (Linear(·, hidden) + ReLU), a bias-free Linear(hidden, 1), plus a
constant ``base_acc``; accuracy is a fraction in [0, 1]. State-dict keys match OFA's
(``layers.0.0.weight`` … ``layers.3.weight``, ``base_acc``), so OFA's released ResNet50 predictor
loads as is. The OFA tutorial's plain ``Sequential`` (with an output bias) loads too.

On disk a predictor is a directory: ``predictor.json`` (header: space, encoder and its parameters,
training figures, base_acc) and ``weights.pt`` (a plain state dict, read with ``weights_only=True``).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ofa_deploy.errors import CheckpointError, ConfigError
from ofa_deploy.compat.checkpoint import read_state_dict
from ofa_deploy.fileio import atomic_path, atomic_write_json, is_regular_file, read_json_file
from ofa_deploy.predictors.encoding import ArchEncoder, get_encoder
from ofa_deploy.spaces import SearchSpace, SubnetConfig, align_space, get_space, space_from_dict, space_to_dict

log = logging.getLogger(__name__)

HEADER_NAME = "predictor.json"
WEIGHTS_NAME = "weights.pt"
SCHEMA_VERSION = 1
RESNET50_RESOLUTIONS = (128, 144, 160, 176, 192, 224, 240, 256)
TUTORIAL_SPACE_RESOLUTIONS = (160, 176, 192, 208, 224)


class AccuracyMLP(nn.Module):
    """OFA's predictor network: ``layers(x).squeeze(-1) + base_acc``."""

    def __init__(self, n_dim: int, *, hidden_size: int = 400, n_layers: int = 3, output_bias: bool = False) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            nn.Sequential(nn.Linear(n_dim if i == 0 else hidden_size, hidden_size), nn.ReLU(inplace=True))
            for i in range(n_layers)
        ]
        blocks.append(nn.Linear(hidden_size, 1, bias=output_bias))
        self.layers = nn.Sequential(*blocks)
        self.register_buffer("base_acc", torch.zeros(1))
        self.n_dim, self.hidden_size, self.n_layers, self.output_bias = n_dim, hidden_size, n_layers, output_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1) + self.base_acc


class AccuracyPredictor:
    """Predicts top-1 accuracy (fraction in [0, 1]) of subnets of `encoder.space`.

    Args:
        encoder: the architecture encoder (fixes the space and the input width).
        model: the MLP; a fresh OFA-shaped one (hidden 400 × 3) when omitted.
        meta: JSON-able provenance and training figures (stored in the header).
    """

    def __init__(self, encoder: ArchEncoder, model: AccuracyMLP | None = None, *,
                 meta: Mapping[str, Any] | None = None) -> None:
        self.encoder = encoder
        self.model = model if model is not None else AccuracyMLP(encoder.n_dim)
        if self.model.n_dim != encoder.n_dim:
            raise ConfigError(f"predictor MLP takes {self.model.n_dim} features but the {encoder.name} encoder makes "
                              f"{encoder.n_dim}")
        self.model.eval()
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def space(self) -> SearchSpace:
        return self.encoder.space

    @property
    def base_acc(self) -> float:
        return float(self.model.base_acc.item())

    # ---- prediction --------------------------------------------------------------------------------
    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Encoded features (N, n_dim) → predicted accuracies (N,) as float64 fractions."""
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)))
        return out.numpy().astype(np.float64).reshape(-1)

    def predict_genes(self, genes: np.ndarray) -> np.ndarray:
        """Gene array (N, n_genes) → accuracies (N,), one batched forward pass."""
        return self.predict_features(self.encoder.encode_genes(genes))

    def predict(self, cfgs: Sequence[SubnetConfig] | SubnetConfig) -> np.ndarray:
        """Configs → accuracies (N,)."""
        if isinstance(cfgs, SubnetConfig):
            cfgs = [cfgs]
        return self.predict_features(self.encoder.encode(cfgs))

    # ---- persistence -------------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "ofa_deploy.accuracy_predictor",
            "space": space_to_dict(self.space),
            "encoder": {"name": self.encoder.name, "params": self.encoder.params()},
            "n_dim": self.encoder.n_dim,
            "model": {"hidden_size": self.model.hidden_size, "n_layers": self.model.n_layers,
                      "output_bias": self.model.output_bias},
            "base_acc": self.base_acc,
            "meta": self.meta,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``predictor.json`` and ``weights.pt`` into `directory` (atomically each)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        with atomic_path(out / WEIGHTS_NAME) as tmp:
            torch.save(state, tmp)
        atomic_write_json(out / HEADER_NAME, self.header(), default=None)
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, space: SearchSpace | None = None) -> AccuracyPredictor:
        """Inverse of `save`. `space` overrides the space rebuilt from the header (gene layout must match)."""
        path = Path(directory)
        header_path, weights_path = path / HEADER_NAME, path / WEIGHTS_NAME
        if not is_regular_file(header_path) or not is_regular_file(weights_path):
            raise CheckpointError(f"{path} is not a saved accuracy predictor: expected {HEADER_NAME} and "
                                  f"{WEIGHTS_NAME} inside (write one with `ofa-deploy accuracy train-predictor`)")
        try:
            header = read_json_file(header_path, what="accuracy predictor header")
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from None
        if not isinstance(header, Mapping) or header.get("kind") != "ofa_deploy.accuracy_predictor":
            kind = header.get("kind") if isinstance(header, Mapping) else type(header).__name__
            raise CheckpointError(f"{header_path} is not an accuracy predictor header (kind={kind!r}, expected "
                                  "'ofa_deploy.accuracy_predictor')")
        space_data = _header_part(header, "space", header_path)
        encoder_data = _header_part(header, "encoder", header_path)
        spec = _header_part(header, "model", header_path)
        try:
            built = space_from_dict(space_data)
        except ConfigError as exc:
            raise CheckpointError(f"{header_path}: the stored space is invalid: {exc}") from None
        if space is not None:
            space = align_space(built, space, what=f"the accuracy predictor {path}")
        params = encoder_data.get("params", {})
        if not isinstance(params, Mapping):
            raise CheckpointError(f"{header_path}: encoder.params must be a mapping, got {params!r}")
        encoder = get_encoder(encoder_data.get("name"), space or built, **params)
        hidden = _header_int(spec, "hidden_size", header_path, 1, 1 << 14)
        n_layers = _header_int(spec, "n_layers", header_path, 1, 64)
        output_bias = spec.get("output_bias", False)
        if not isinstance(output_bias, bool):
            raise CheckpointError(f"{header_path}: model.output_bias must be true or false, got {output_bias!r}")
        model = AccuracyMLP(encoder.n_dim, hidden_size=hidden, n_layers=n_layers, output_bias=output_bias)
        _load_state(model, read_state_dict(weights_path), weights_path)
        meta = header.get("meta")
        return cls(encoder, model, meta=meta if isinstance(meta, Mapping) else None)

    def for_space(self, space: SearchSpace) -> AccuracyPredictor:
        """The same network with its encoder rebuilt for `space` (e.g. the supernet's space restricted to some
        resolutions); `space` must fit the predictor (`align_space`)."""
        align_space(self.space, space, what="the accuracy predictor")
        encoder = get_encoder(self.encoder.name, space, **self.encoder.params())
        return AccuracyPredictor(encoder, self.model, meta=self.meta)

    def __repr__(self) -> str:
        return f"AccuracyPredictor(encoder={self.encoder!r}, base_acc={self.base_acc:.4f})"


def detect_ofa_kind(state: Mapping[str, Any]) -> str:
    """``"mbv3_tutorial"`` (plain Sequential keys ``0.weight``…) or ``"resnet50"`` (``layers.*``, ``base_acc``)."""
    keys = set(state)
    if "0.weight" in keys and all(k.split(".", 1)[0].isdigit() for k in keys):
        return "mbv3_tutorial"
    if "layers.0.0.weight" in keys:
        return "resnet50"
    shown = ", ".join(sorted(keys)[:5])
    raise CheckpointError(f"cannot tell which OFA accuracy predictor this is (keys {shown}, ...): expected OFA's "
                          "tutorial MBv3 predictor (0.weight ... 6.bias) or its ResNet50 predictor "
                          "(layers.0.0.weight ..., base_acc)")


def load_ofa_predictor(path: str | os.PathLike[str], *, kind: str = "auto",
                       space: SearchSpace | None = None) -> AccuracyPredictor:
    """Load OFA's released predictor weights.

    kind ``"auto"`` (default): told from the state-dict keys (`detect_ofa_kind`).
    kind ``"resnet50"``: ``ofa_resnet50_acc_predictor.pth`` (keys ``layers.*``, ``base_acc``; 82 features,
    resolutions 128..256). kind ``"mbv3_tutorial"``: the tutorial's ``acc_predictor.pth`` (plain
    ``Sequential`` ``0.weight`` … ``6.bias``; 128 features; OFA-MBv3 w1.2). The default space is the
    matching registry space restricted to the resolutions the predictor encodes; a given `space` is restricted
    to them too (`align_space`).
    """
    path = Path(path)
    if not is_regular_file(path):
        hint = " (a directory: pass it as a saved predictor, --predictor DIR)" if path.is_dir() else ""
        raise CheckpointError(f"OFA predictor weights not found at {path}{hint}")
    try:
        state = read_state_dict(path)  # CheckpointError for truncated or foreign files; unwraps {"state_dict": ...}
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; expected OFA's released accuracy predictor (.pth)") from None
    if kind == "auto":
        kind = detect_ofa_kind(state)
    elif kind in ("resnet50", "mbv3_tutorial"):
        try:
            found = detect_ofa_kind(state)
        except CheckpointError:
            found = kind  # unrecognised keys: the strict load below names them
        if found != kind:
            raise CheckpointError(f"{path} is OFA's {found} accuracy predictor, not {kind}; pass kind 'auto' "
                                  f"(CLI: drop --kind / --ofa-predictor-kind) or {found!r}")
    if kind == "resnet50":
        own = get_space("ofa_resnet50", resolutions=RESNET50_RESOLUTIONS)
        space = align_space(own, space, what=f"OFA's ResNet50 predictor {path}") if space is not None else own
        encoder = get_encoder("resnet", space, resolutions=RESNET50_RESOLUTIONS)
        model = AccuracyMLP(encoder.n_dim)
    elif kind == "mbv3_tutorial":
        own = get_space("ofa_mbv3_w12", resolutions=TUTORIAL_SPACE_RESOLUTIONS)
        space = align_space(own, space, what=f"OFA's tutorial MBv3 predictor {path}") if space is not None else own
        encoder = get_encoder("mbv3_tutorial", space)
        model = AccuracyMLP(encoder.n_dim, output_bias=True)
        state = _tutorial_to_layers(state, path)
    else:
        raise ConfigError(f"unknown OFA predictor kind {kind!r}; expected 'auto', 'resnet50' or 'mbv3_tutorial'")
    _load_state(model, state, path)
    return AccuracyPredictor(encoder, model, meta={"source": str(path), "ofa_kind": kind})


def _tutorial_to_layers(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Plain Sequential keys (0, 2, 4, 6) → AccuracyMLP keys (layers.0.0 … layers.3)."""
    names = {"0": "layers.0.0", "2": "layers.1.0", "4": "layers.2.0", "6": "layers.3"}
    out: dict[str, torch.Tensor] = {"base_acc": torch.zeros(1)}
    for key, value in state.items():
        idx, _, leaf = key.partition(".")
        if idx not in names:
            raise CheckpointError(f"{path}: unexpected key {key!r} for the tutorial predictor "
                                  f"(expected 0.weight … 6.bias)")
        out[f"{names[idx]}.{leaf}"] = value
    return out


def _load_state(model: nn.Module, state: Any, path: Path) -> None:
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {k: _flush_subnormals(v) for k, v in state.items()}
    if "base_acc" not in state:
        state["base_acc"] = torch.zeros(1)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the predictor network: {exc}") from exc


def _flush_subnormals(t: torch.Tensor) -> torch.Tensor:
    """Zero float32 subnormals. OFA's released ResNet50 predictor holds ~330K of them (weight decay
    residue, |w| < 1.2e-38), which make CPU matmuls ~40x slower; as weights they are exactly negligible."""
    if not torch.is_floating_point(t):
        return t
    tiny = torch.finfo(t.dtype).tiny
    return torch.where(t.abs() < tiny, torch.zeros_like(t), t)


def _header_part(header: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    part = header.get(key)
    if not isinstance(part, Mapping):
        raise CheckpointError(f"{path}: {key!r} must be a mapping, got {part!r}; the header was not written by "
                              "AccuracyPredictor.save")
    return part


def _header_int(spec: Mapping[str, Any], key: str, path: Path, low: int, high: int) -> int:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CheckpointError(f"{path}: model.{key} = {value!r} is invalid; expected an integer in {low}..{high}")
    return value
