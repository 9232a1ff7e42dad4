"""The optimizers, by name: a registry of factories from a learning rate to an optax transformation.

`make_optimizer("adam", schedule, b2=0.99)` checks the name and the options and builds the
transformation; `register` adds a factory. The checks (`check`, `check_positive`,
`check_unit_interval`) raise ConfigError, and the row transformations use them as well.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import optax

from sg_jax.errors import ConfigError

OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {}


def register(name: str):
    """Add a factory `(learning_rate_schedule, *, options...) -> GradientTransformation`."""

    def deco(factory):
        OPTIMIZERS[name] = factory
        return factory

    return deco


def check(ok: bool, message: str) -> None:
    """Raise ConfigError(message) unless ok."""
    if not ok:
        raise ConfigError(message)


def check_unit_interval(name: str, value: float) -> None:
    """Raise ConfigError unless 0 <= value < 1 (a decay rate, a momentum)."""
    check(isinstance(value, (int, float)) and 0 <= value < 1, f"{name} must be in [0, 1), got {value!r}")


def check_positive(name: str, value: float) -> None:
    """Raise ConfigError unless value is a finite number > 0 (a rate, an epsilon, a norm)."""
    check(isinstance(value, (int, float)) and value > 0 and math.isfinite(value),
          f"{name} must be a positive number, got {value!r}")


@register("sgd")
def _sgd(learning_rate_schedule, *, momentum: float | None = None, nesterov: bool = False):
    """Plain SGD (word2vec's update; with momentum, a lazily updated trace per row)."""
    if momentum is not None:
        check_unit_interval("momentum", momentum)
    return optax.sgd(learning_rate_schedule, momentum=momentum, nesterov=nesterov)


@register("adagrad")
def _adagrad(learning_rate_schedule, *, initial_accumulator_value: float = 0.1, eps: float = 1e-7):
    """Adagrad. initial_accumulator_value: the squared-gradient sum a row starts from (0.1, as
    TensorFlow and optax; it bounds a rare word's first steps at lr * |g| / sqrt(0.1)).
    eps: added inside the square root."""
    check(isinstance(initial_accumulator_value, (int, float)) and initial_accumulator_value >= 0,
          f"initial_accumulator_value must be >= 0, got {initial_accumulator_value!r}")
    check_positive("eps", eps)
    return optax.adagrad(learning_rate_schedule, initial_accumulator_value=initial_accumulator_value, eps=eps)


@register("adam")
def _adam(learning_rate_schedule, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adam (lazily: a row's moments move only at steps that touch it; the bias correction uses
    the global step, as LazyAdam). b1, b2: decay rates of the first and second moments;
    eps: added to the root of the second moment."""
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_positive("eps", eps)
    return optax.adam(learning_rate_schedule, b1=b1, b2=b2, eps=eps)


def make_optimizer(name: str, learning_rate_schedule, **options) -> optax.GradientTransformation:
    """The optimizer `name` (a key of OPTIMIZERS) with a learning rate (a float or an optax
    schedule: step -> rate) and the factory's keyword options."""
    check(name in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    if not callable(learning_rate_schedule):
        check_positive("lr", learning_rate_schedule)
    factory = OPTIMIZERS[name]
    allowed = [p.name for p in inspect.signature(factory).parameters.values() if p.kind is p.KEYWORD_ONLY]
    for key in options:
        check(key in allowed, f"optimizer {name!r} has no option {key!r}; "
                              f"its options are {', '.join(allowed) or 'none'}")
    return factory(learning_rate_schedule, **options)
