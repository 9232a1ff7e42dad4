"""How the replicas' changes of a row combine at a sync (`Config.sync_combine`): the rules by
name, with what the config checks about each. Their arithmetic runs inside the mesh
(`sg_jax.parallel.replicated`, keyed by the same names); this module imports nothing, so the
config can read it without starting JAX or importing the runners."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class CombineRule:
    needs_trust_region: bool = False   # holds rows to the trust region's bound: refused without it
    with_shard_tables: bool = True     # sharded tables take one synchronous step: a rule that is not
    #                                    that step (the mean) is refused with them


# Config.sync_combine's choices besides auto, which `Config.resolved_sync_combine` turns into one
SYNC_COMBINES: dict[str, CombineRule] = {
    "cap": CombineRule(),
    "sum": CombineRule(),
    "mean": CombineRule(with_shard_tables=False),
    "trust": CombineRule(needs_trust_region=True),
}
