"""The executor interface long profiling jobs run through: local and sequential by default.

A job is a picklable callable applied to independent, idempotent work items; the executor yields results as
they finish (in any order) so the caller can append each one to a resumable store at once. A distributed
executor (e.g. Ray actors pinned to devices through custom resources) implements the same `map`.
"""
from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(abc.ABC):
    """Runs `job(item)` for every item and yields the results as they complete."""

    @abc.abstractmethod
    def map(self, job: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply `job` to `items`; results may come back in any order (each carries its own item id)."""

    def close(self) -> None:
        """Release workers."""

    def describe(self) -> dict[str, Any]:
        return {"executor": type(self).__name__}


class LocalExecutor(Executor):
    """In this process, one item after the other (what timing on the local machine needs)."""

    def map(self, job: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield job(item)
