"""Optimizers for row-sparse steps (the module `sparse`, whose public names are importable from here)."""

from sg_jax.optim.sparse import (OPTIMIZERS, RowUpdates, TrustRegionChain, bound_row_moves, cap_duplicates,
                                 check_positive, check_unit_interval, clip_by_table_norm, make_optimizer,
                                 partner_norms, register, row_state_tables, sparse_row_updates, sparse_step,
                                 trust_region, with_trust_region)

__all__ = ["OPTIMIZERS", "RowUpdates", "TrustRegionChain", "bound_row_moves", "cap_duplicates", "check_positive",
           "check_unit_interval", "clip_by_table_norm", "make_optimizer", "partner_norms", "register",
           "row_state_tables", "sparse_row_updates", "sparse_step", "trust_region", "with_trust_region"]
