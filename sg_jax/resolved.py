"""A run's choices, made once: `resolve(config, devices)` turns a Config and the device count into
the values every part of the run reads (the window layout, the noise sharing, the architecture's
form, the objective bound to them, the sync interval, the pool's group, the duplicate cap, the
learning rate).

`auto` options are resolved here and nowhere else at run time: the layout and sharing by the
layouts' registry (`sg_jax.data.layouts.resolve`), the sync interval from the device count
counted over every process (`sg_jax.mesh.resolve_devices` counts them; a run of P processes of D
devices is resolved, and records, as one process of P·D devices). The config it returns is
validated and carries the resolved device count, sync interval and combine rule, which is what a
run records.
Resolving a resolved config gives it back unchanged.
"""

from __future__ import annotations

import dataclasses

from sg_jax.config import Config
from sg_jax.data.layouts import Layout
from sg_jax.data.layouts import resolve as resolve_layout
from sg_jax.objectives import Objective, make_objective


@dataclasses.dataclass(frozen=True)
class Resolved:
    config: Config            # validated; devices, sync_every and sync_combine resolved: what the run records
    devices: int              # data-parallel devices of the run, over every process
    layout: Layout
    sharing: str              # share_negatives, resolved
    form: str                 # target, context or cbow
    objective: Objective      # bound to the form and the resolved sharing
    sync_every: int           # steps between the replicas' syncs (1 on one device and with sharded tables)
    dup_cap: float | None
    learning_rate: float


def resolve(config: Config, devices: int | None = None) -> Resolved:
    """The run's choices for `devices` devices over every process (default: config.devices, 1
    if unset)."""
    n = devices or config.devices or 1
    config = dataclasses.replace(config, devices=n, sync_every=config.sync_interval(n),
                                 batch_size=config.resolved_batch_size,
                                 sync_combine=config.resolved_sync_combine).validate()
    layout, sharing = resolve_layout(config, make_objective)
    if config.pool_group is None:
        config = dataclasses.replace(config, pool_group=layout.pool_group(config))
    return Resolved(config, n, layout, sharing, config.form, make_objective(config), config.sync_every,
                    config.resolved_dup_cap, config.learning_rate)
