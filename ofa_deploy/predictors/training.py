"""Training an `AccuracyPredictor` on an (architecture, accuracy) dataset.

The recipe is the OFA maintainer's (issue #30): Adam, lr 1e-3, weight decay 1e-4, labels as fractions,
``base_acc`` initialised to the mean training accuracy. Subnets are split into train / validation /
held-out test **by architecture**: every resolution of one architecture lands on the same side, so the
held-out figures measure generalisation to unseen architectures. Training stops early on validation
RMSE and keeps the best weights. Figures (RMSE in top-1 points, Kendall τ, Spearman ρ, and the RMSE
of predicting the training mean) are computed on the held-out architectures.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import stats

from ofa_deploy.errors import ConfigError
from ofa_deploy.predictors.accuracy import AccuracyMLP, AccuracyPredictor
from ofa_deploy.predictors.encoding import ArchEncoder, default_encoder, get_encoder
from ofa_deploy.spaces import SearchSpace, SubnetConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainReport:
    """Held-out figures of a trained predictor (RMSE in top-1 percentage points)."""

    n_samples: int
    n_architectures: int
    n_train: int
    n_val: int
    n_test: int
    epochs: int
    best_epoch: int
    base_acc: float
    val_rmse: float
    test_rmse: float
    test_baseline_rmse: float
    test_kendall_tau: float
    test_spearman: float
    seconds: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with `n` intra-op threads, then restore the previous setting (None: leave it).

    Small MLPs and tiny convnets run several times faster on one thread than on two on a shared machine.
    """
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def encoder_for_data(space: SearchSpace, configs: Sequence[SubnetConfig], name: str | None = None) -> ArchEncoder:
    """The encoder to train on `configs`: its resolution slots are the resolutions present in the data.

    A one-hot slot never seen in training would predict arbitrary values; without the slot, a query at
    that resolution raises a clear error instead.
    """
    seen = sorted({c.resolution for c in configs})
    if name == "mbv3_tutorial":
        return get_encoder(name, space)
    return get_encoder(name, space, resolutions=seen) if name else default_encoder(space, resolutions=seen)


def split_by_architecture(arch_ids: np.ndarray, *, val_fraction: float, test_fraction: float,
                          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (train, val, test); all rows sharing an architecture id go to one split."""
    unique = np.unique(arch_ids)
    order = np.random.default_rng(seed).permutation(unique)
    n_test = max(1, int(round(test_fraction * len(unique))))
    n_val = max(1, int(round(val_fraction * len(unique))))
    if n_test + n_val >= len(unique):
        raise ConfigError(f"need more than {n_test + n_val} distinct architectures to split off validation and "
                          f"test sets, got {len(unique)}; build a larger accuracy dataset")
    test_ids, val_ids = set(order[:n_test].tolist()), set(order[n_test : n_test + n_val].tolist())
    side = np.array([2 if a in test_ids else 1 if a in val_ids else 0 for a in arch_ids.tolist()])
    return np.flatnonzero(side == 0), np.flatnonzero(side == 1), np.flatnonzero(side == 2)


def architecture_ids(encoder: ArchEncoder, features: np.ndarray) -> np.ndarray:
    """One id per row, equal for rows that differ only in resolution (or in skipped blocks' choices)."""
    keyed = features.copy()
    keyed[:, encoder.resolution_columns()] = 0
    _, ids = np.unique(keyed, axis=0, return_inverse=True)
    return ids.reshape(-1)


def _rmse_points(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - target) ** 2)) * 100.0)


def train_predictor(
    encoder: ArchEncoder,
    configs: Sequence[SubnetConfig] | None = None,
    accuracies: Sequence[float] | np.ndarray | None = None,
    *,
    genes: np.ndarray | None = None,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    max_epochs: int = 400,
    patience: int = 40,
    hidden_size: int = 400,
    n_layers: int = 3,
    meta: dict | None = None,
    num_threads: int | None = 1,
) -> tuple[AccuracyPredictor, TrainReport]:
    """Fit OFA's MLP to accuracies (fractions in [0, 1]) of `configs` (or of gene rows `genes`).

    Same seed, same split, same weights (on one machine and thread count).
    """
    start = time.perf_counter()
    if (configs is None) == (genes is None):
        raise ConfigError("pass exactly one of configs=... or genes=...")
    g = encoder.space.to_genes(list(configs)) if configs is not None else np.asarray(genes, dtype=np.int64)
    y = np.asarray(accuracies, dtype=np.float64).reshape(-1)
    if len(y) != len(g):
        raise ConfigError(f"{len(g)} subnets but {len(y)} accuracies")
    if y.size and (y.min() < 0 or y.max() > 1):
        raise ConfigError(f"accuracies must be fractions in [0, 1] (got {y.min():.3g}..{y.max():.3g}); divide "
                          "percentages by 100")
    x = encoder.encode_genes(g)
    arch = architecture_ids(encoder, x)
    tr, va, te = split_by_architecture(arch, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)

    with torch.random.fork_rng(devices=[]), torch_threads(num_threads):
        torch.manual_seed(seed)
        model = AccuracyMLP(encoder.n_dim, hidden_size=hidden_size, n_layers=n_layers)
        base = float(y[tr].mean())
        model.base_acc.fill_(base)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)
        best, best_state, best_epoch, epoch = float("inf"), copy.deepcopy(model.state_dict()), 0, 0
        tr_t = torch.from_numpy(tr)
        for epoch in range(1, max_epochs + 1):
            model.train()
            perm = tr_t[torch.randperm(len(tr_t), generator=gen)]
            for i in range(0, len(perm), batch_size):
                idx = perm[i : i + batch_size]
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.mse_loss(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                val = _rmse_points(model(xt[va]).double().numpy(), y[va])
            if val < best - 1e-6:
                best, best_state, best_epoch = val, copy.deepcopy(model.state_dict()), epoch
            elif epoch - best_epoch >= patience:
                break
        model.load_state_dict(best_state)
        model.eval()

    predictor = AccuracyPredictor(encoder, model)
    pred = predictor.predict_features(x[te])
    tau = stats.kendalltau(pred, y[te]).statistic if len(te) > 1 else float("nan")
    rho = stats.spearmanr(pred, y[te]).statistic if len(te) > 1 else float("nan")
    report = TrainReport(
        n_samples=int(len(y)), n_architectures=int(arch.max() + 1) if len(arch) else 0,
        n_train=int(len(tr)), n_val=int(len(va)), n_test=int(len(te)), epochs=epoch, best_epoch=best_epoch,
        base_acc=base, val_rmse=best, test_rmse=_rmse_points(pred, y[te]),
        test_baseline_rmse=_rmse_points(np.full(len(te), base), y[te]),
        test_kendall_tau=float(tau), test_spearman=float(rho), seconds=time.perf_counter() - start,
    )
    predictor.meta.update(meta or {})
    predictor.meta["training"] = report.to_dict()
    predictor.meta["recipe"] = {"optimizer": "adam", "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size,
                                "max_epochs": max_epochs, "patience": patience, "seed": seed,
                                "split": "by architecture", "val_fraction": val_fraction,
                                "test_fraction": test_fraction}
    log.info("accuracy predictor: held-out RMSE %.3f pts (mean baseline %.3f), Kendall tau %.3f, %d epochs",
             report.test_rmse, report.test_baseline_rmse, report.test_kendall_tau, epoch)
    return predictor, report
