"""Gradient checks for any registered objective: `jax.grad` against central finite differences,
and against the objective's hand derivation when it registers one (`Objective.closed_form`).

The closed forms live beside each loss (sg_jax/objectives/*.py), written from the textbook
(Rong 2014, "word2vec Parameter Learning Explained"); nothing in them uses automatic
differentiation. `check_gradients` works for a user's own objective too: register it, or pass an
`Objective` directly; without a closed form it compares jax.grad with finite differences only.
`run_gradcheck` checks every registered objective under every architecture form.
"""

from __future__ import annotations

import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from sg_jax.architectures import ARCHITECTURES, SG_FORMS, Batch
from sg_jax.errors import ConfigError
from sg_jax.model import Params
from sg_jax.objectives import REGISTRY, Objective, get_objective, get_spec, objective_loss

GRADCHECK_MAX_ELEMENTS = 10_000_000  # the largest intermediate of a check: B * C * (V + k) * N


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    objective: str
    arch: str
    derivation_abs: float     # max |jax.grad - derivation|
    derivation_rel: float     # max |jax.grad - derivation| / max(|jax.grad|, |derivation|, floor)
    fd_abs: float             # max |jax.grad - central finite difference| on the checked coords
    fd_rel: float
    fd_coords: int            # coordinates checked by finite differences
    dtype: str

    def ok(self, tol: float = 1e-8, fd_tol: float = 1e-5) -> bool:
        derivation_ok = self.derivation_rel != self.derivation_rel or self.derivation_rel <= tol  # NaN: none
        return derivation_ok and self.fd_rel <= fd_tol

    def format(self) -> str:
        derivation = ("no hand derivation registered" if self.derivation_rel != self.derivation_rel else
                      f"derivation vs jax.grad max abs {self.derivation_abs:.3e} rel {self.derivation_rel:.3e}")
        return (f"{self.arch}/{self.objective} ({self.dtype}): {derivation}; finite differences "
                f"({self.fd_coords} coords) max abs {self.fd_abs:.3e} rel {self.fd_rel:.3e}")


def _errors(a, b, floor=1e-6):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    return float(diff.max(initial=0.0)), float((diff / scale).max(initial=0.0))


def finite_difference_grads(loss_fn, params, coords, eps: float, chunk: int = 64):
    """Central differences of loss_fn at the flat coordinates `coords` (int array), vectorised
    over chunks of coordinates."""
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def fd(idx):
        def one(i):
            e = jnp.zeros_like(flat).at[i].set(eps)
            return (loss_fn(unravel(flat + e)) - loss_fn(unravel(flat - e))) / (2 * eps)

        return jax.vmap(one)(idx)

    coords = np.asarray(coords)
    pad = (-coords.size) % chunk
    padded = np.concatenate([coords, np.zeros(pad, coords.dtype)]).reshape(-1, chunk)
    values = np.concatenate([np.asarray(fd(jnp.asarray(c))) for c in padded])
    return values[: coords.size], np.asarray(flat)


def check_gradients(params: Params, batch: Batch, objective: str | Objective = "softmax", arch: str = "sg", *,
                    aux=None, tables=None, sg_form: str = "target", max_fd_coords: int = 400, seed: int = 0,
                    eps: float | None = None, finite_differences: bool = True, **options) -> GradCheckReport:
    """Compare jax.grad of an objective's loss with finite differences and, when the objective has
    one, with its hand derivation.

    objective: a registered name (bound to `arch`/`sg_form` with `options` such as negative=,
    share_negatives=, noise_power=) or an `Objective`. aux: its sampled values (noise words) held
    fixed; tables: what it reads from the counts. Run it in float64 (`jax.enable_x64(True)` and
    float64 params) for agreement near machine precision; in float32 expect ~1e-3 from the finite
    differences.
    """
    obj = objective if isinstance(objective, Objective) else get_objective(arch, objective, sg_form=sg_form, **options)
    loss_fn = lambda p: objective_loss(p, obj, batch, aux, tables)  # noqa: E731
    auto = jax.jit(jax.grad(loss_fn))(params)
    d_abs, d_rel = float("nan"), float("nan")
    if obj.closed_form is not None:
        hand = jax.jit(lambda p: obj.closed_form(p, batch, aux, tables))(params)
        d_abs, d_rel = 0.0, 0.0
        for a, h in zip(auto, hand):
            ab, rel = _errors(a, h)
            d_abs, d_rel = max(d_abs, ab), max(d_rel, rel)

    flat_auto, _ = ravel_pytree(auto)
    if not finite_differences:
        return GradCheckReport(obj.name, obj.form, d_abs, d_rel, 0.0, 0.0, 0, str(flat_auto.dtype))
    n = flat_auto.size
    rng = np.random.default_rng(seed)
    if n <= max_fd_coords:
        coords = np.arange(n)
    else:  # half on the largest gradients (touched rows), half uniform
        top = np.argsort(-np.abs(np.asarray(flat_auto)))[: max_fd_coords // 2]
        coords = np.unique(np.concatenate([top, rng.choice(n, max_fd_coords // 2, replace=False)]))
    dtype = flat_auto.dtype
    eps = eps if eps is not None else (1e-5 if dtype == jnp.float64 else 1e-2)
    fd, _ = finite_difference_grads(loss_fn, params, coords, eps)
    fd_abs, fd_rel = _errors(np.asarray(flat_auto)[coords], fd, floor=1e-4 if dtype == jnp.float64 else 1e-2)
    return GradCheckReport(obj.name, obj.form, d_abs, d_rel, fd_abs, fd_rel, int(coords.size), str(dtype))


def random_problem(V: int, N: int, C: int, B: int, *, objective: str = "softmax", seed: int = 0,
                   dtype=jnp.float64, repeat_contexts: bool = True):
    """A random (params, batch, counts) with repeated contexts and a target in its own context."""
    rng = np.random.default_rng(seed)
    out_rows = get_spec(objective).out_rows(V) if objective in REGISTRY else V
    params = Params(jnp.asarray(rng.normal(size=(V, N)), dtype), jnp.asarray(rng.normal(size=(out_rows, N)), dtype))
    targets = rng.integers(0, V, B)
    contexts = rng.integers(0, V, (B, C))
    if repeat_contexts and C >= 2:
        contexts[0, 1] = contexts[0, 0]          # the same context word twice
    if B >= 2:
        contexts[1, -1] = targets[1]             # the target inside its own context
    mask = rng.random((B, C)) < 0.8
    mask[:, 0] = True
    batch = Batch(jnp.asarray(targets, jnp.int32), jnp.asarray(contexts, jnp.int32), jnp.asarray(mask))
    counts = rng.integers(1, 1000, V)
    return params, batch, counts


def run_gradcheck(objectives="all", archs="all", *, vocab_size=11, dim=5, contexts=4, batch=3, negative=3,
                  seed=0, on_report=None) -> list[GradCheckReport]:
    """check_gradients on random problems for every registered objective under every form (and
    every noise-sharing mode for the objectives that read `share_negatives`). on_report(report):
    called as each check ends (the command line prints it then: the whole run takes a minute).

    The problem is bounded (GRADCHECK_MAX_ELEMENTS for batch * contexts * (vocab_size + negative)
    * dim, the size of its largest intermediate): a check is a test of the algebra, which small
    problems exercise fully, and a huge one would exhaust memory inside XLA.
    """
    sizes = dict(vocab_size=vocab_size, dim=dim, contexts=contexts, batch=batch, negative=negative)
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    elements = batch * contexts * (vocab_size + negative) * dim
    if elements > GRADCHECK_MAX_ELEMENTS:
        raise ConfigError(f"gradcheck problem too large: batch * contexts * (vocab_size + negative) * dim = "
                          f"{elements:,}, more than {GRADCHECK_MAX_ELEMENTS:,} "
                          f"(batch={batch}, contexts={contexts}, vocab_size={vocab_size}, negative={negative}, "
                          f"dim={dim})")
    names = list(REGISTRY) if objectives == "all" else [objectives]
    archs = list(ARCHITECTURES) if archs == "all" else [archs]
    forms = [(a, f) for a in archs for f in (SG_FORMS if a == "sg" else ("target",))]
    reports = []
    for arch, sg_form in forms:
        for name in names:
            spec = get_spec(name)
            params, b, counts = random_problem(vocab_size, dim, contexts, batch, objective=name, seed=seed)
            shares = ("none", "target", "batch", "pool") if "share_negatives" in spec.options else (None,)
            for share in shares:
                # pools of 2k + 1 noise words (a weight k / (2k + 1), not 1), one per 2 targets
                options = types.SimpleNamespace(negative=negative, share_negatives=share or "none", noise_power=0.75,
                                                noise_pool=2 * negative + 1, pool_group=2, cbow_update="mean")
                tables = spec.tables(counts, options)
                obj = get_objective(arch, name, sg_form=sg_form, **vars(options))
                aux = obj.sample(jax.random.PRNGKey(seed), b, tables)
                report = check_gradients(params, b, obj, aux=aux, tables=tables)
                report = report if share is None else dataclasses.replace(report, objective=f"{name}[share={share}]")
                reports.append(report)
                if on_report is not None:
                    on_report(report)
    return reports
