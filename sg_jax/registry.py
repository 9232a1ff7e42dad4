"""What every registry of named choices (objectives, window layouts) shares: adding an entry
under a checked name, and looking one up with a one-line error naming the choices."""

from __future__ import annotations

from typing import TypeVar

from sg_jax.errors import ConfigError

T = TypeVar("T")


def add(registry: dict[str, T], kind: str, name: str, entry: T) -> T:
    """registry[name] = entry (added or replaced), name a short identifier; returns entry."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{kind}'s name must be a short identifier, got {name!r}")
    registry[name] = entry
    return entry


def lookup(registry: dict[str, T], kind: str, name: str, *, also: tuple[str, ...] = ()) -> T:
    """registry[name], or ConfigError naming the choices (`also`: allowed values listed first,
    such as auto, that are not entries)."""
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; choose one of {', '.join((*also, *registry))}")
    return registry[name]
