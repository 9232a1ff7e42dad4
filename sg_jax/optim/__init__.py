"""Optimizers for row-sparse steps: optax transformations applied to the rows a batch touches.

A step's gradient for a table is a small [M, N] array of row gradients plus the int row indices
[M] they came from; this package turns such gradients into a step of any elementwise optax
optimizer (docs/optimizers.md). One module per concept, in the order they build on each other:

- `optimizers`: the registry of optimizers by name (sgd, adagrad, adam): `OPTIMIZERS`,
  `register`, `make_optimizer`, and the option checks;
- `rows`: row bookkeeping: grouping repeated indices, summing and counting their rows;
- `transforms`: the transformations that read the step's indices: `cap_duplicates`,
  `clip_by_table_norm`;
- `trust`: the trust region on each row's summed update: `trust_region`, `partner_norms`,
  `with_trust_region` (a `TrustRegionChain`), and `bound_row_moves`, the same rule applied after
  the scatter;
- `sparse`: the step itself, with lazy optimizer state: `sparse_step`, `sparse_row_updates`
  (its updates before they are written, for the sharded step), `RowUpdates`, `row_state_tables`.

The public names of each are importable from here (`from sg_jax.optim import sparse_step`).
"""

from sg_jax.optim.optimizers import OPTIMIZERS, check_positive, check_unit_interval, make_optimizer, register
from sg_jax.optim.sparse import RowUpdates, row_state_tables, sparse_row_updates, sparse_step
from sg_jax.optim.transforms import cap_duplicates, clip_by_table_norm
from sg_jax.optim.trust import TrustRegionChain, bound_row_moves, partner_norms, trust_region, with_trust_region

__all__ = ["OPTIMIZERS", "RowUpdates", "TrustRegionChain", "bound_row_moves", "cap_duplicates", "check_positive",
           "check_unit_interval", "clip_by_table_norm", "make_optimizer", "partner_norms", "register",
           "row_state_tables", "sparse_row_updates", "sparse_step", "trust_region", "with_trust_region"]
