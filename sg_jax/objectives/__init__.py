"""Training objectives: pure losses over the rows of the two tables that a batch touches.

`base` defines what an objective is and the registry; each other module is one objective that
registers itself: `softmax` (exact), `negative` (negative sampling, "ns"), `hierarchical`
(hierarchical softmax, "hs") and `nce` (noise-contrastive estimation). Importing this package
registers them all. A new objective is one more module calling `register` (docs/extending.md).
"""

from __future__ import annotations

import dataclasses
import types

from sg_jax.architectures import SG_FORMS, Batch, get_architecture
from sg_jax.errors import ConfigError
from sg_jax.objectives.base import REGISTRY, Objective, ObjectiveSpec, get_spec, objective_loss, register
# each registers itself on import; this order is the order of the choices in --help
from sg_jax.objectives import softmax  # noqa: F401, I001
from sg_jax.objectives import negative  # noqa: F401
from sg_jax.objectives import hierarchical  # noqa: F401
from sg_jax.objectives import nce  # noqa: F401

__all__ = ["Batch", "Objective", "ObjectiveSpec", "REGISTRY", "get_objective", "get_spec", "make_objective",
           "objective_loss", "register"]


def make_objective(config) -> Objective:
    """The Objective a Config trains: its objective bound to its architecture's form."""
    spec = get_spec(config.objective)
    form = get_architecture(config.arch).form(config.resolved_sg_form)
    if getattr(config, "share_negatives", None) == "auto":  # the objective reads the resolved sharing
        config = dataclasses.replace(config, share_negatives=config.sharing)
    return _bound(spec, spec.make(form, config))


def _bound(spec: ObjectiveSpec, obj: Objective) -> Objective:
    """The objective with its spec's facts that the step and the layouts read."""
    return obj._replace(reads_every_output_row=spec.reads_every_output_row)


def get_objective(arch: str = "sg", name: str = "ns", *, sg_form: str = "target", **options) -> Objective:
    """The Objective for an architecture and an objective name, with keyword options (negative=,
    share_negatives= or share=, noise_pool=, noise_power=, cbow_update=) for direct use in tests and
    notebooks.

    sg_form (skip-gram only): "target" (the textbook's form) or "context" (word2vec's)."""
    if sg_form not in SG_FORMS:
        raise ConfigError(f"unknown skip-gram form {sg_form!r}; choose {' or '.join(SG_FORMS)}")
    if "share" in options:
        options["share_negatives"] = options.pop("share")
    options.setdefault("share_negatives", "none")
    form = get_architecture(arch).form(sg_form)
    spec = get_spec(name)
    return _bound(spec, spec.make(form, types.SimpleNamespace(**options)))
