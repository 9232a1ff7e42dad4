"""The window layouts, as registered values (`base.Layout`): padded, packed and span.

Importing this package registers the three; `resolve` turns a config's `window_layout` and
`share_negatives` (either may be auto) into the layout and noise sharing it trains with. A new
layout is one module defining a `Layout` subclass and calling `register` (docs/extending.md).
"""

from __future__ import annotations

import dataclasses

from sg_jax.data.layouts.base import LAYOUTS, Layout, choices, get_layout, register
# each registers itself on import; this order is the order of the choices in --help
from sg_jax.data.layouts import padded  # noqa: F401, I001
from sg_jax.data.layouts import packed  # noqa: F401
from sg_jax.data.layouts import span  # noqa: F401

__all__ = ["LAYOUTS", "Layout", "choices", "get_layout", "register", "resolve"]


def resolve(config, make_objective) -> tuple[Layout, str]:
    """(layout, noise sharing) of a config, with auto resolved: `window_layout auto` takes the
    highest-ranked layout (`Layout.auto_rank`) that can train the config with the sharing it asks
    for (its `auto_sharing` when share_negatives is auto); the layout of rank 0 is the fallback and
    takes any sharing. `share_negatives auto` takes the chosen layout's `auto_sharing` where the
    layout can train with it, else target. make_objective(config) -> Objective."""
    if config.window_layout != "auto":
        layout = get_layout(config.window_layout)
        return layout, _sharing(config, layout, make_objective)
    ranked = sorted((lay for lay in LAYOUTS.values() if lay.auto_rank is not None), key=lambda lay: -lay.auto_rank)
    for layout in ranked:
        if config.share_negatives not in ("auto", layout.auto_sharing) and layout.auto_rank != 0:
            continue
        sharing = _sharing(config, layout, make_objective)
        if layout.auto_rank == 0 or layout.chosen_automatically(config) and layout.refusal(
                _with(config, layout, sharing), make_objective(_with(config, layout, sharing))) is None:
            return layout, sharing
    raise AssertionError("no fallback layout of auto_rank 0 is registered")


def _with(config, layout: Layout, sharing: str):
    return dataclasses.replace(config, window_layout=layout.name, share_negatives=sharing)


def _sharing(config, layout: Layout, make_objective) -> str:
    if config.share_negatives != "auto":
        return config.share_negatives
    trial = _with(config, layout, layout.auto_sharing)
    return layout.auto_sharing if layout.refusal(trial, make_objective(trial)) is None else "target"
