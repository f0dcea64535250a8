"""One validator for every backend: compare a runner (numpy in → numpy out) against a reference.

The reference is a PyTorch module (run in eval mode on a deep copy, so the caller's model is untouched) or another
runner (e.g. the fp32 ONNX model in ORT, when checking an int8 model). Two pass criteria:

* ``mode="allclose"`` (fp32 backends): every element satisfies ``|y - ref| <= atol + rtol * |ref|``.
* ``mode="top1"`` (int8): the argmax over the last axis agrees on at least ``min_top1`` of the samples.

Both modes always report per-output max abs / max rel error and top-1 agreement.

A comparison only means something if the reference outputs depend on the input. The validator measures the
*input sensitivity* of output 0: the largest elementwise spread (max - min) across all validation samples, relative
to the largest |reference|. Below `MIN_INPUT_SENSITIVITY` the outputs are constants (a random-init OFA supernet:
its BN statistics do not match its activations, which collapse to the classifier bias), and the result is a
failure that says so, never a pass. `ofa_deploy.export.structural` validates such models on a copy with
randomised, calibrated BN statistics instead.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Union

import numpy as np

from ofa_deploy.errors import ConfigError, ExportError, OfaDeployError

log = logging.getLogger(__name__)

Arrays = Union[np.ndarray, Sequence[np.ndarray]]
Runner = Callable[[np.ndarray], Arrays]

#: Minimum relative input sensitivity of output 0 for a comparison to count. Random-init OFA supernets measured
#: 1e-10..1.5e-7 (a few float32 ulps of the logits: constants); the same subnets with calibrated random BN
#: statistics and any working model measure 0.1..1. It equals the default ``rtol``: reference outputs that move
#: by less than the comparison tolerance cannot tell a backend that ignores its input from a correct one.
MIN_INPUT_SENSITIVITY = 1e-3


@dataclass(frozen=True)
class OutputError:
    """Error of one output over all validation inputs."""

    index: int
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    ref_abs_max: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputError:
        """Inverse of `to_dict`."""
        return cls(index=int(data["index"]), shape=tuple(int(s) for s in data["shape"]),
                   max_abs=float(data["max_abs"]), max_rel=float(data["max_rel"]),
                   ref_abs_max=float(data["ref_abs_max"]))


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of comparing one backend with its reference."""

    backend: str
    passed: bool
    mode: str
    atol: float
    rtol: float
    min_top1: float | None
    outputs: tuple[OutputError, ...]
    top1_agreement: float
    n_samples: int
    input_shapes: tuple[tuple[int, ...], ...]
    seed: int | None
    message: str
    extra: dict[str, Any] = field(default_factory=dict)
    input_sensitivity: float | None = None
    min_input_sensitivity: float = MIN_INPUT_SENSITIVITY

    @property
    def constant_outputs(self) -> bool:
        """True when the reference outputs were measured not to depend on the input."""
        return self.input_sensitivity is not None and self.input_sensitivity < self.min_input_sensitivity

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((o.max_rel for o in self.outputs), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "passed": self.passed, "mode": self.mode, "atol": self.atol, "rtol": self.rtol,
            "min_top1": self.min_top1, "max_abs": self.max_abs, "max_rel": self.max_rel,
            "outputs": [o.to_dict() for o in self.outputs], "top1_agreement": self.top1_agreement,
            "n_samples": self.n_samples, "input_shapes": [list(s) for s in self.input_shapes], "seed": self.seed,
            "input_sensitivity": self.input_sensitivity, "min_input_sensitivity": self.min_input_sensitivity,
            "constant_outputs": self.constant_outputs, "message": self.message,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationResult:
        """Inverse of `to_dict` (the derived ``max_abs``/``max_rel``/``constant_outputs`` are recomputed).

        Raises:
            ConfigError: a key is missing or has the wrong type.
        """
        try:
            sensitivity = data.get("input_sensitivity")
            min_top1 = data.get("min_top1")
            seed = data.get("seed")
            return cls(
                backend=str(data["backend"]), passed=bool(data["passed"]), mode=str(data["mode"]),
                atol=float(data["atol"]), rtol=float(data["rtol"]),
                min_top1=None if min_top1 is None else float(min_top1),
                outputs=tuple(OutputError.from_dict(o) for o in data["outputs"]),
                top1_agreement=float(data["top1_agreement"]), n_samples=int(data["n_samples"]),
                input_shapes=tuple(tuple(int(s) for s in shape) for shape in data["input_shapes"]),
                seed=None if seed is None else int(seed), message=str(data["message"]),
                extra=dict(data.get("extra") or {}),
                input_sensitivity=None if sensitivity is None else float(sensitivity),
                min_input_sensitivity=float(data.get("min_input_sensitivity", MIN_INPUT_SENSITIVITY)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"malformed validation result ({type(exc).__name__}: {exc}); expected the dict "
                              "written by ValidationResult.to_dict()") from exc


def make_inputs(
    input_shape: Sequence[int], *, n_inputs: int = 3, seed: int = 0, dynamic_batch: bool = True,
    dynamic_batch_size: int = 3,
) -> list[np.ndarray]:
    """Seeded standard-normal float32 inputs; with `dynamic_batch`, batch sizes alternate 1, k, 1, k, ...

    The first input always has the batch size of `input_shape` when `dynamic_batch` is False.
    """
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or n_inputs < 1:
        raise ConfigError(f"n_inputs must be an int >= 1, got {n_inputs!r}")
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"input_shape must be a sequence of ints such as (1, 3, 224, 224), got {input_shape!r}") \
            from exc
    if len(shape) < 2 or any(s <= 0 for s in shape):
        raise ConfigError(f"input_shape must have >= 2 positive dims such as (1, 3, 224, 224), got {input_shape!r}")
    rng = np.random.default_rng(seed)
    tail = shape[1:]
    batches = [1 if i % 2 == 0 else dynamic_batch_size for i in range(n_inputs)] if dynamic_batch \
        else [int(input_shape[0])] * n_inputs
    return [rng.standard_normal((b, *tail), dtype=np.float32) for b in batches]


def _as_list(out: Arrays) -> list[np.ndarray]:
    if isinstance(out, np.ndarray):
        return [out]
    return [np.asarray(o) for o in out]


def torch_runner(model: Any) -> Runner:
    """Wrap a torch module as a runner (eval-mode deep copy, ``inference_mode``)."""
    import torch

    clone = copy.deepcopy(model).eval().float()

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            out = clone(torch.from_numpy(np.ascontiguousarray(x)))
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [o.detach().cpu().numpy() for o in outs]

    return run


class Spread:
    """Elementwise min/max of one output across samples (rows of every batch): its input sensitivity."""

    def __init__(self) -> None:
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None
        self.abs_max = 0.0
        self.n = 0

    def add(self, batch: np.ndarray) -> None:
        """Add every sample (row) of one reference batch."""
        rows = np.asarray(batch, dtype=np.float64)
        rows = rows.reshape(rows.shape[0] if rows.ndim else 1, -1)
        if rows.shape[0] == 0 or (self.lo is not None and self.lo.shape != rows.shape[1:]):
            return  # empty, or a per-sample shape other than the first batch's (reported by the comparison)
        lo, hi = rows.min(axis=0), rows.max(axis=0)
        if self.lo is None or self.hi is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)
        self.abs_max = max(self.abs_max, float(np.max(np.abs(rows), initial=0.0)))
        self.n += rows.shape[0]

    def relative(self) -> float | None:
        """max(max - min) / max|ref| over elements; None with fewer than two samples (not measurable)."""
        if self.n < 2 or self.lo is None or self.hi is None:
            return None
        spread = float(np.max(self.hi - self.lo, initial=0.0))
        return spread / max(self.abs_max, np.finfo(np.float64).tiny) if spread > 0 else 0.0


def constant_outputs_message(sensitivity: float, threshold: float, n: int) -> str:
    """Why a comparison of input-independent outputs is not a pass, and how to fix it."""
    return (f"the reference outputs do not depend on the input (relative spread {sensitivity:.2g} across {n} "
            f"samples < {threshold:g}), so agreement compares constants and proves nothing. This is typical of a "
            "random-init supernet, whose BN statistics make every layer's output constant. Fix: load trained "
            "weights or recalibrate BN (ofa_deploy.nn.bn.recalibrate_bn), or validate the structure on a copy with "
            "randomised BN statistics (the exporters do this when they are given the torch model)")


def _reference_runner(reference: Any) -> Runner:
    try:
        import torch

        if isinstance(reference, torch.nn.Module):
            return torch_runner(reference)
    except ImportError:  # pragma: no cover - torch is a hard dependency in practice
        pass
    if not callable(reference):
        raise ConfigError(f"reference must be a torch.nn.Module or a callable runner, got {type(reference).__name__}")
    return reference


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _run(label: str, run: Runner, x: np.ndarray, i: int) -> list[np.ndarray]:
    """Call one runner; a crash becomes an `ExportError` naming the runner and the input."""
    try:
        return _as_list(run(x))
    except OfaDeployError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{label} failed on validation input {i} of shape {tuple(x.shape)}: {first}") from exc


def validate_runner(
    reference: Any,
    runner: Runner,
    *,
    inputs: Sequence[np.ndarray],
    atol: float = 1e-4,
    rtol: float = 1e-3,
    mode: Literal["allclose", "top1"] = "allclose",
    min_top1: float | None = None,
    backend: str = "unknown",
    seed: int | None = None,
    reference_outputs: Sequence[Arrays] | None = None,
    min_input_sensitivity: float = MIN_INPUT_SENSITIVITY,
) -> ValidationResult:
    """Run `runner` and `reference` on every input and compare them.

    Args:
        reference: a torch module or a runner producing the expected outputs.
        runner: the backend under test, numpy array in → array or list of arrays out.
        inputs: the validation inputs (see `make_inputs`).
        atol, rtol: elementwise tolerance ``atol + rtol * |ref|`` (``mode="allclose"``).
        mode: ``"allclose"`` or ``"top1"`` (pass iff top-1 agreement >= `min_top1`).
        min_top1: required top-1 agreement in ``mode="top1"`` (default 0.9); optional extra check otherwise.
        backend: label stored in the result.
        seed: the seed the inputs were made from (recorded only).
        reference_outputs: precomputed reference outputs per input (skips running the reference).
        min_input_sensitivity: below this relative spread of output 0 across the samples (see `Spread`) the
            reference is constant and the result fails whatever the errors (0 disables the check). Not measurable,
            and so not checked, with a single sample.
    """
    if not inputs:
        raise ConfigError("validate_runner needs at least one input; make some with make_inputs()")
    if mode not in ("allclose", "top1"):
        raise ConfigError(f"mode must be 'allclose' or 'top1', got {mode!r}")
    for name, value in (("atol", atol), ("rtol", rtol), ("min_input_sensitivity", min_input_sensitivity)):
        if not _is_real(value) or not 0.0 <= float(value) < float("inf"):
            raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    if min_top1 is not None and (not _is_real(min_top1) or not 0.0 <= float(min_top1) <= 1.0):
        raise ConfigError(f"min_top1 must be a number in [0, 1], got {min_top1!r}")
    if mode == "top1" and min_top1 is None:
        min_top1 = 0.9
    ref_run = None if reference_outputs is not None else _reference_runner(reference)
    n_out: int | None = None
    max_abs: list[float] = []
    max_rel: list[float] = []
    ref_max: list[float] = []
    shapes: list[tuple[int, ...]] = []
    close = True
    agree = 0
    n_samples = 0
    problems: list[str] = []
    spread = Spread()
    for i, x in enumerate(inputs):
        if reference_outputs is not None:
            ref = _as_list(reference_outputs[i])
        else:
            ref = _run("the reference", ref_run, x, i)  # type: ignore[arg-type]
        got = _run(backend, runner, x, i)
        if n_out is None:
            n_out = len(ref)
            max_abs, max_rel, ref_max = [0.0] * n_out, [0.0] * n_out, [0.0] * n_out
            shapes = [tuple(r.shape[1:]) for r in ref]
        if ref:
            spread.add(np.asarray(ref[0]))
        if len(got) != len(ref):
            problems.append(f"input {i}: backend returned {len(got)} outputs, reference {len(ref)}")
            close = False
            continue
        for k, (r, g) in enumerate(zip(ref, got)):
            r = np.asarray(r, dtype=np.float64)
            g = np.asarray(g, dtype=np.float64)
            if r.shape != g.shape:
                problems.append(f"input {i} output {k}: shape {g.shape} != reference {r.shape}")
                close = False
                max_abs[k] = float("inf")
                continue
            diff = np.abs(g - r)
            if not np.all(np.isfinite(g)):
                problems.append(f"input {i} output {k}: non-finite values")
                close = False
            max_abs[k] = max(max_abs[k], float(np.nanmax(diff, initial=0.0)))
            denom = np.maximum(np.abs(r), np.finfo(np.float32).tiny)
            max_rel[k] = max(max_rel[k], float(np.nanmax(diff / denom, initial=0.0)))
            ref_max[k] = max(ref_max[k], float(np.max(np.abs(r), initial=0.0)))
            close &= bool(np.all(diff <= atol + rtol * np.abs(r)))
            if k == 0 and r.ndim >= 2:
                agree += int(np.sum(np.argmax(r, axis=-1) == np.argmax(g, axis=-1)))
                n_samples += int(np.prod(r.shape[:-1]))
    top1 = agree / n_samples if n_samples else float("nan")
    outputs = tuple(OutputError(k, shapes[k], max_abs[k], max_rel[k], ref_max[k]) for k in range(n_out or 0))
    top1_ok = min_top1 is None or (n_samples > 0 and top1 >= min_top1)
    if mode == "allclose":
        passed = close and top1_ok and not problems
        crit = f"|diff| <= {atol:g} + {rtol:g}*|ref|"
        if min_top1 is not None:
            crit += f" and top-1 >= {min_top1:.2f}"
    else:
        passed = top1_ok and not problems
        crit = f"top-1 agreement >= {min_top1:.2f}"
    sensitivity = spread.relative()
    constant = sensitivity is not None and sensitivity < min_input_sensitivity
    passed = passed and not constant
    worst_abs = max(max_abs, default=0.0)
    worst_rel = max(max_rel, default=0.0)
    verdict = "passed" if passed else "FAILED"
    message = (f"{backend} validation {verdict} ({crit}): max abs {worst_abs:.3g}, max rel {worst_rel:.3g}, "
               f"top-1 agreement {top1:.3f} over {n_samples} samples")
    if problems:
        message += "; " + "; ".join(problems[:3])
    if sensitivity is not None and constant:
        message += "; " + constant_outputs_message(sensitivity, min_input_sensitivity, spread.n)
    elif sensitivity is None:
        message += "; input sensitivity not measured (one sample)"
    else:
        message += f"; input sensitivity {sensitivity:.2g} (>= {min_input_sensitivity:g})"
    (log.info if passed else log.warning)(message)
    return ValidationResult(
        backend=backend, passed=passed, mode=mode, atol=float(atol), rtol=float(rtol), min_top1=min_top1,
        outputs=outputs, top1_agreement=top1, n_samples=n_samples,
        input_shapes=tuple(tuple(int(s) for s in x.shape) for x in inputs), seed=seed, message=message,
        input_sensitivity=sensitivity, min_input_sensitivity=float(min_input_sensitivity),
    )
