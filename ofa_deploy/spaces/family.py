"""Model families: everything ofa-deploy knows about one kind of supernet, declared in one place.

A `ModelFamily` names the family (the `SearchSpace.family` of its spaces), its space class, its registered
names (``ofa_mbv3_w12``: a space configuration and, if OFA released them, the weights) and the rules the rest of
the toolchain reads: the supernet builder, the accuracy encoders, the layer-plan and gather-table rules, the OFA
latency-table schema. The built-in families are declared in ``ofa_deploy/families/`` (one module each) and
registered when ``ofa_deploy`` is imported; a new family is one more such declaration::

    from ofa_deploy.spaces.family import ModelFamily, ModelName, register_family

    register_family(ModelFamily(name="tiny", space_class=TinySpace, names=(ModelName("tiny_w10", "..."),),
                                build_supernet=TinySupernet, plan_configs=tiny_plan_configs))

Everything that used to branch on a family's name looks the family up here instead (`family_of(space)`).
This module is torch-free: a family's supernet builder is only called when a supernet is built, so a builder that
imports torch inside itself keeps `spaces` importable without it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ofa_deploy.errors import ConfigError, unknown_name
from ofa_deploy.spaces.base import SearchSpace
from ofa_deploy.spaces.config import SubnetConfig


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class ModelName:
    """One registered name of a family (what ``get_space`` and ``create_supernet`` accept).

    Attributes:
        name: the registry name, e.g. ``"ofa_mbv3_w12"``.
        description: one line for ``ofa-deploy list supernets``.
        space_args: constructor arguments of the family's space class for this name (on top of the family's).
        weights: the released checkpoint (a `ofa_deploy.compat.released.WeightsSource`), or None.
    """

    name: str
    description: str
    space_args: Mapping[str, Any] = field(default_factory=dict)
    weights: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "space_args", _frozen(self.space_args))


@dataclass(frozen=True)
class ModelFamily:
    """A model family, declared once (see the module docstring).

    Attributes:
        name: the family, equal to the `SearchSpace.family` of its spaces (e.g. ``"mbv3"``).
        space_class: the torch-free space class; a name's space is
            ``space_class(name=..., **space_args, **name.space_args, **overrides)``.
        names: the registered names of the family.
        build_supernet: ``build_supernet(space)`` returns the elastic supernet of `space` (torch; import it
            inside the builder so declaring the family stays torch-free).
        plan_configs: ``plan_configs(space, resolution)`` yields configs whose walks together contain every
            distinct layer of `space` at `resolution` (the LUT plan and in-context builds time those).
        space_args: constructor arguments shared by every name (e.g. ``{"family": "mbv3"}``).
        slots: ``slots(space)`` builds the gather-table slots of `space` (`spaces.slots.SlotTables`) for batched
            predictors; None: predictors sum each config's walk instead.
        encoders: accuracy encoders by name (``encoder(space, resolutions=...)`` returns an
            `ofa_deploy.predictors.encoding.ArchEncoder`), the first one the default.
        ofa_lut_schema: the key schema of OFA's YAML latency tables for this family (``"mbv3"``,
            ``"proxyless"``), None if OFA published none.
        in_context_lut: LUT builds on ONNX Runtime default to in-context timing (layers read from the profiles
            of whole covering subnets); False where those subnets are too large (ResNet50) or the family's layers
            have not been checked against the profiler's node mapping.
    """

    name: str
    space_class: type[SearchSpace]
    names: tuple[ModelName, ...]
    build_supernet: Callable[[SearchSpace], Any]
    plan_configs: Callable[[SearchSpace, int], Iterable[SubnetConfig]]
    space_args: Mapping[str, Any] = field(default_factory=dict)
    slots: Callable[[SearchSpace], tuple[Any, ...]] | None = None
    encoders: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    ofa_lut_schema: str | None = None
    in_context_lut: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a model family needs a non-empty name, got {self.name!r}")
        if not (isinstance(self.space_class, type) and issubclass(self.space_class, SearchSpace)):
            raise ConfigError(f"family {self.name!r}: space_class must be a SearchSpace subclass, "
                              f"got {self.space_class!r}")
        object.__setattr__(self, "names", tuple(self.names))
        if not self.names or not all(isinstance(n, ModelName) for n in self.names):
            raise ConfigError(f"family {self.name!r}: names must be a non-empty sequence of ModelName")
        seen = [n.name for n in self.names]
        if len(set(seen)) != len(seen):
            raise ConfigError(f"family {self.name!r} registers a name twice: {seen}")
        object.__setattr__(self, "space_args", _frozen(self.space_args))
        object.__setattr__(self, "encoders", _frozen(self.encoders))

    def model_name(self, name: str) -> ModelName:
        for entry in self.names:
            if entry.name == name:
                return entry
        raise unknown_name(f"{self.name} name", name, [n.name for n in self.names])

    def space(self, name: str, /, **overrides: Any) -> SearchSpace:
        """The space of registered name `name`; keyword overrides build a variant (``resolutions=(160,)``)."""
        args = {**self.space_args, **self.model_name(name).space_args, "name": name, **overrides}
        space = self.space_class(**args)
        if space.family != self.name:
            raise ConfigError(f"family {self.name!r} built {space.name!r} as a space of family {space.family!r}; a "
                              f"family's spaces must carry its name (SearchSpace.family == {self.name!r})")
        return space


class FamilyRegistry:
    """Model families by name, and their registered names. `FAMILIES` is the one the toolchain reads."""

    def __init__(self) -> None:
        self._families: dict[str, ModelFamily] = {}

    def register(self, family: ModelFamily) -> ModelFamily:
        """Add `family`; a family or a name registered twice is a ConfigError (unregister the old one first)."""
        if not isinstance(family, ModelFamily):
            raise ConfigError(f"register a ModelFamily, got {type(family).__name__}")
        if family.name in self._families:
            raise ConfigError(f"model family {family.name!r} is already registered; unregister it first")
        taken = {n.name: f.name for f in self._families.values() for n in f.names}
        clashes = [n.name for n in family.names if n.name in taken]
        if clashes:
            raise ConfigError(f"family {family.name!r}: names {clashes} are already registered by family "
                              f"{taken[clashes[0]]!r}")
        self._families[family.name] = family
        return family

    def unregister(self, name: str) -> ModelFamily:
        """Remove the family called `name` and return it."""
        return self._families.pop(self.get(name).name)

    def __contains__(self, name: object) -> bool:
        return name in self._families

    def get(self, name: str) -> ModelFamily:
        """The family called `name` (`UnknownNameError` with close matches if none)."""
        if name not in self._families:
            raise unknown_name("model family", str(name), self._families)
        return self._families[name]

    def families(self) -> list[ModelFamily]:
        return [self._families[k] for k in sorted(self._families)]

    def lookup(self, name: str) -> tuple[ModelFamily, ModelName]:
        """The family and entry of registered name `name` (`UnknownNameError` naming the close matches)."""
        for family in self._families.values():
            for entry in family.names:
                if entry.name == name:
                    return family, entry
        raise unknown_name("supernet", str(name), self.names())

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(n.name for f in self._families.values() for n in f.names)


#: the registry the toolchain reads; ``ofa_deploy.families`` registers the built-in families in it
FAMILIES = FamilyRegistry()


def register_family(family: ModelFamily) -> ModelFamily:
    """Register `family` in `FAMILIES` (its names become valid for `get_space`, `create_supernet`, ...)."""
    return FAMILIES.register(family)


def unregister_family(name: str) -> ModelFamily:
    """Remove family `name` from `FAMILIES` (e.g. at the end of a test that registered it)."""
    return FAMILIES.unregister(name)


def get_family(name: str) -> ModelFamily:
    """The registered family called `name` (``"mbv3"``, ``"proxyless"``, ``"resnet"``, ...)."""
    return FAMILIES.get(name)


def family_of(space: SearchSpace) -> ModelFamily:
    """The family of `space` (by `space.family`); a space of an unregistered family is a ConfigError."""
    if space.family not in FAMILIES:
        raise ConfigError(f"space {space.name!r} is of family {space.family!r}, which is not registered (known: "
                          f"{', '.join(list_families())}); declare it with ofa_deploy.spaces.family.register_family")
    return FAMILIES.get(space.family)


def list_families() -> list[str]:
    return [f.name for f in FAMILIES.families()]
