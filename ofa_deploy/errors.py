"""One error hierarchy for the whole toolchain.

Every message says what was wrong, what was expected, and how to fix it. The CLI maps
`OfaDeployError` to exit code 1, `ValidationFailedError` to exit code 3 and `BudgetNotVerifiedError` to 4.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class OfaDeployError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(OfaDeployError, ValueError):
    """A subnet config, search space, profile or file content is invalid."""


class UnknownNameError(OfaDeployError, KeyError):
    """A registry lookup failed (supernet, backend, encoder, ...)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CheckpointError(OfaDeployError):
    """A checkpoint does not match the model it is loaded into."""


class LatencyTableMissError(OfaDeployError, KeyError):
    """A latency lookup table has no entry for a layer."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ExportError(OfaDeployError):
    """An export step failed before validation."""


class ExportOptionError(ExportError, ConfigError):
    """An export option is invalid (an `ExportError` and a `ConfigError`: caught by either)."""


class ValidationFailedError(OfaDeployError):
    """An exported artifact does not reproduce the PyTorch outputs; artifacts and report are kept."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class InfeasibleConstraintError(OfaDeployError):
    """No subnet of the space satisfies a search constraint."""


class BackendUnavailableError(OfaDeployError):
    """A backend or device is not present on this machine (e.g. CUDA, TVM not installed)."""


class ForeignTableError(OfaDeployError):
    """A latency table was measured on another host or runtime than the one it is used for."""


class AdaptationError(OfaDeployError):
    """An adapted latency table did not meet its held-out goal on the target within the device-time budget."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class BudgetNotVerifiedError(OfaDeployError):
    """No deployed subnet could be verified under the latency budget on the target; the run dir is kept."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UnknownNameError:
    """Build an `UnknownNameError` that lists the known names and the close matches."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known)}.")
