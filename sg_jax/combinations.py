"""Options that cannot be used together: `COMBINATION_RULES`, (applies(config), message(config))
pairs that `Config.combination_problem` checks in order, before the window layout's refusal."""

from __future__ import annotations

from typing import Callable

from sg_jax.combine_rules import SYNC_COMBINES


def _reads_every_output_row(config) -> bool:
    from sg_jax.objectives import get_spec  # JAX must not start yet: see sg_jax.options

    return get_spec(config.objective).reads_every_output_row


COMBINATION_RULES: tuple[tuple[Callable[..., bool], Callable[..., str]], ...] = (
    (lambda c: c.shard_tables and c.sync_every not in (None, 1),
     lambda c: f"sync_every {c.sync_every} cannot be used with shard_tables: with sharded tables every step is "
               "synchronous, so sync_every does not apply (drop --sync-every)"),
    (lambda c: c.sync_every is not None and c.steps_per_call % c.sync_every != 0,
     lambda c: f"sync_every {c.sync_every} must divide steps_per_call {c.steps_per_call}: the replicas sync at "
               f"fixed steps of every call (use a divisor of {c.steps_per_call}, or auto)"),
    (lambda c: c.shard_tables and c.clip_norm is not None,
     lambda c: "clip_norm cannot be used with shard_tables: its global gradient norm would need every device's "
               "rows (drop one of the two)"),
    (lambda c: c.shard_tables and _reads_every_output_row(c),
     lambda c: f"objective {c.objective} cannot be used with shard_tables: it reads and updates every row of W' "
               "at every step (use ns, hs or nce, or drop shard_tables)"),
    (lambda c: c.shard_tables and not SYNC_COMBINES[c.resolved_sync_combine].with_shard_tables,
     lambda c: f"sync_combine {c.sync_combine} cannot be used with shard_tables: sharded tables take one "
               "synchronous step over all the devices' batches (the sum; cap, which limits replicas' diverging "
               "copies, has nothing to limit there)"),
    (lambda c: SYNC_COMBINES[c.resolved_sync_combine].needs_trust_region and not c.trust_region,
     lambda c: f"sync_combine {c.sync_combine} needs the trust region (trust_region > 0): it holds each row's "
               "summed change to that bound (use cap, or set trust_region)"),
)
