"""How a Config field is declared and checked: `option` (its help, choices, check and group as
field metadata, read by the command line and by validation), the value checks, and the choices
read from the registries when asked.

The registries (objectives, architectures, layouts, optimizers) import JAX. The command line
imports this module to build its flags before it sets XLA_FLAGS (the host device count), and JAX
must not start before that: so the registries are imported inside the functions that read them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

_NOT_ADDED = object()


def registered_objectives() -> tuple[str, ...]:
    from sg_jax.objectives import REGISTRY  # JAX must not start yet (module docstring)

    return tuple(REGISTRY)


def registered_architectures() -> tuple[str, ...]:
    from sg_jax.architectures import ARCHITECTURES  # JAX must not start yet (module docstring)

    return tuple(ARCHITECTURES)


def registered_layouts() -> tuple[str, ...]:
    from sg_jax.data.layouts import choices  # JAX must not start yet (module docstring)

    return choices()


def sg_form_choices() -> tuple[str, ...]:
    from sg_jax.architectures import SG_FORMS  # JAX must not start yet (module docstring)

    return ("auto",) + SG_FORMS


def cbow_update_choices() -> tuple[str, ...]:
    from sg_jax.architectures import CBOW_UPDATES  # JAX must not start yet (module docstring)

    return CBOW_UPDATES


def init_choices() -> tuple[str, ...]:
    from sg_jax.model import INITS  # JAX must not start yet (module docstring)

    return INITS


def registered_optimizers() -> tuple[str, ...]:
    from sg_jax.optim import OPTIMIZERS  # JAX must not start yet (module docstring)

    return tuple(OPTIMIZERS)


def option(default, help: str, *, choices: tuple | Callable[[], tuple] | None = None,
           check: Callable[[Any], bool] | None = None, rule: str | Callable[[Any], str] = "",
           group: str = "training", metavar: str | None = None, added: Any = _NOT_ADDED):
    """A Config field with what the command line and validation need to know about it.

    check(value) -> bool with `rule` saying what it requires ("must be >= 1"); choices: a tuple or
    a function returning the registered names. added: the field came after sg_jax 0.1.0, and a
    config saved before it takes this value (None: the field's default; a function: its value of
    the saved dict, for a field split off another); see `added_fields`."""
    metadata = {"help": help, "choices": choices, "check": check, "rule": rule, "group": group, "metavar": metavar}
    if added is not _NOT_ADDED:
        metadata["added"] = added
    return dataclasses.field(default=default, metadata=metadata)


def added_fields(cls) -> dict[str, Any]:
    """{field: the value a config saved before the field takes (None: its default)} for the fields
    declared with `added`; any other missing field means a damaged file."""
    return {f.name: f.metadata["added"] for f in dataclasses.fields(cls) if "added" in f.metadata}


def at_least(low):
    return (lambda v: v >= low), f"must be >= {low}"


def positive_finite(v) -> bool:
    return v > 0 and math.isfinite(v)


def field_problem(f: dataclasses.Field, value) -> str | None:
    """The message for a bad value of a field, or None."""
    name = f.name
    if not type_ok(f, value):
        return f"{name} must be {f.type.replace('|', 'or')}, got {value!r}"
    if value is None:
        return None
    choices = f.metadata.get("choices")
    if choices is not None:
        allowed = choices() if callable(choices) else choices
        if value not in allowed:
            return f"{name} must be one of {', '.join(allowed)}, got {value!r}"
    check = f.metadata.get("check")
    if check is not None and not check(value):
        rule = f.metadata.get("rule") or "is out of range"
        return f"{name} {rule(value) if callable(rule) else rule}, got {value!r}"
    return None


def type_ok(f: dataclasses.Field, value) -> bool:
    kind = field_kind(f)
    if value is None:
        return "None" in str(f.type)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def field_kind(f: dataclasses.Field) -> type:
    """The plain type of a field (int, float, bool or str), without `| None`."""
    text = str(f.type)
    for kind in (bool, int, float, str):
        if text.split("|")[0].strip() == kind.__name__:
            return kind
    raise TypeError(f"unsupported Config field type {text}")
