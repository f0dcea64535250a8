"""Search spaces as JSON-able descriptions, and fitting one space to another (torch-free).

`space_to_dict` / `space_from_dict` store a space's constructor arguments (predictor headers, accuracy datasets);
`align_space` restricts a supernet's space to the resolutions a predictor or a table covers, and
`space_differences` names what differs between two spaces.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ofa_deploy.errors import ConfigError
from ofa_deploy.spaces.base import SearchSpace
from ofa_deploy.spaces.family import FAMILIES, ModelFamily

log = logging.getLogger(__name__)


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """Constructor arguments that rebuild `space`'s gene layout (JSON-able), with its class and family."""
    return {"class": type(space).__name__, "family": space.family, **space.constructor_args()}


def space_from_dict(data: Mapping[str, Any]) -> SearchSpace:
    """Inverse of `space_to_dict` through the registered family; every bad value is a ConfigError naming the field.

    Descriptions written before families were recorded (ResNet ones have no ``family``) are matched by class.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a space description must be a mapping, got {type(data).__name__}")
    family = _family_of_description(data)
    params = {p: spec for p, spec in inspect.signature(family.space_class.__init__).parameters.items()
              if p != "self" and spec.kind is not inspect.Parameter.VAR_KEYWORD}
    kwargs = {k: v for k, v in data.items() if k != "class" and (k != "family" or k in params)}
    kwargs = {**{k: v for k, v in family.space_args.items() if k in params}, **kwargs}
    unknown = sorted(map(str, set(kwargs) - set(params)))
    missing = [p for p, spec in params.items() if spec.default is inspect.Parameter.empty and p not in kwargs]
    if unknown or missing:
        raise ConfigError(f"{data.get('class')} description: unknown keys {unknown} or missing {missing}; "
                          f"allowed keys: {sorted(params)}")
    return family.space_class(**kwargs)


def _family_of_description(data: Mapping[str, Any]) -> ModelFamily:
    name, cls = data.get("family"), data.get("class")
    families = FAMILIES.families()
    if isinstance(name, str) and name in FAMILIES:
        family = FAMILIES.get(name)
        if family.space_class.__name__ == cls:
            return family
    elif name is None:
        matches = [f for f in families if f.space_class.__name__ == cls]
        if len(matches) == 1:
            return matches[0]
    known = ", ".join(f"{f.name} ({f.space_class.__name__})" for f in families)
    raise ConfigError(f"space description of class {cls!r}, family {name!r}: no registered family has that space "
                      f"class; known families: {known}")


def describe_values(values: Sequence[Any]) -> str:
    """A list of choices for messages: ``128..224 step 4`` when evenly spaced integers, else comma-separated."""
    vals = list(values)
    if len(vals) > 2 and all(isinstance(v, int) for v in vals):
        steps = {b - a for a, b in zip(vals, vals[1:])}
        if len(steps) == 1:
            return f"{vals[0]}..{vals[-1]} step {steps.pop()}"
    return ", ".join(map(str, vals))


def space_differences(a: SearchSpace, b: SearchSpace) -> list[str]:
    """What differs between two spaces' constructor arguments, e.g. ``resolutions 160..224 step 16 vs 128..224
    step 4`` (the name is ignored)."""
    da, db = space_to_dict(a), space_to_dict(b)
    out = []
    for key in sorted(set(da) | set(db)):
        if key != "name" and da.get(key) != db.get(key):
            va, vb = da.get(key), db.get(key)
            fa = describe_values(va) if isinstance(va, list) else repr(va)
            fb = describe_values(vb) if isinstance(vb, list) else repr(vb)
            out.append(f"{key} {fa} vs {fb}")
    return out


def align_space(predictor_space: SearchSpace, space: SearchSpace, *, what: str = "the accuracy predictor",
                resolutions: Sequence[int] | None = None) -> SearchSpace:
    """`space` restricted to the resolutions `predictor_space` covers (and to `resolutions`, if given).

    A predictor trained on a subset of a supernet's resolutions (OFA's tutorial predictor: 160..224 step 16; the
    supernet: 128..224 step 4) drives a search over that subset. Any other difference (kernels, expand ratios,
    depths, width, family, classes) is an error naming it.
    """
    if type(predictor_space) is not type(space) or predictor_space.family != space.family:
        raise ConfigError(f"{what} is for a {type(predictor_space).__name__} of family {predictor_space.family!r} "
                          f"({predictor_space.name}), the supernet {space.name} is a {type(space).__name__} of family "
                          f"{space.family!r}; use a predictor for this supernet")
    diffs = [d for d in space_differences(predictor_space, space) if not d.startswith("resolutions ")]
    if diffs:
        raise ConfigError(f"{what} does not fit supernet {space.name}: its space differs in {'; '.join(diffs)} "
                          "(predictor vs supernet). Train or load a predictor for this supernet")
    wanted = [r for r in space.resolutions if r in set(predictor_space.resolutions)]
    if resolutions is not None:
        outside = sorted(set(resolutions) - set(wanted))
        if outside:
            raise ConfigError(f"resolutions {describe_values(outside)} are outside what {what} covers "
                              f"({describe_values(list(predictor_space.resolutions))}) within supernet {space.name}; "
                              f"pick --resolutions among those")
        wanted = [r for r in wanted if r in set(resolutions)]
    if not wanted:
        raise ConfigError(f"{what} covers resolutions {describe_values(list(predictor_space.resolutions))}, none of "
                          f"which supernet {space.name} has ({describe_values(list(space.resolutions))})")
    if tuple(wanted) == tuple(space.resolutions):
        return space
    if set(wanted) != set(predictor_space.resolutions) and resolutions is None:
        missing = sorted(set(predictor_space.resolutions) - set(wanted))
        log.warning("%s covers resolutions %s that supernet %s lacks; searching the shared ones", what,
                    describe_values(missing), space.name)
    log.info("searching %s at resolutions %s (%s)", space.name, describe_values(wanted), what)
    return space_from_dict({**space_to_dict(space), "resolutions": wanted})
