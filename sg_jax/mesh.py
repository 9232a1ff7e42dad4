"""Devices: which ones a run trains on, and the mesh that spans them.

sg_jax trains data-parallel over a one-axis mesh ("data"): every device holds the whole of both
tables, takes its own share of each step's targets (device d of n builds batch s*n + d of the
epoch's visiting order, on the device), and runs `steps_per_call` sparse steps on its replica.
Then the replicas' changes since the call began are summed over the mesh (one all-reduce of the
tables per call) and added to the tables every replica started from. For SGD this is the update
of one large step whose batch is the union of the devices' batches, split into per-device
sequences of small steps (the deltas are summed, not averaged: averaging would divide every
example's step by n). See docs/devices.md for the design and its measurements.

On a CPU the cores become devices only if XLA is told so before JAX starts
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`); the command line arranges this
(`host_device_flags`), a Python user sets the variable before importing jax.
"""

from __future__ import annotations

import os

from sg_jax.errors import ConfigError

AXIS = "data"
_FLAG = "--xla_force_host_platform_device_count"


def host_device_flags(count: int | None, environ=os.environ) -> None:
    """Before JAX starts: make `count` (None: every core) host CPU devices, unless XLA_FLAGS
    already chooses a count. Harmless on GPU and TPU (it only shapes the host platform)."""
    import sys

    flags = environ.get("XLA_FLAGS", "")
    if _FLAG in flags or "jax" in sys.modules:  # chosen already, or too late: JAX has started
        return
    n = count if count is not None else (os.cpu_count() or 1)
    environ["XLA_FLAGS"] = f"{flags} {_FLAG}={max(1, n)}".strip()


def resolve_devices(requested: int | None) -> int:
    """The device count a run uses: all of JAX's devices when None, else `requested` (refused
    when more than exist)."""
    import jax

    available = jax.device_count()
    if requested is None:
        return available
    if requested > available:
        hint = "" if jax.default_backend() != "cpu" else \
            f" (on a CPU, set XLA_FLAGS={_FLAG}={requested} before JAX starts; the command line does)"
        raise ConfigError(f"devices={requested} but only {available} device(s) exist{hint}")
    return requested


def make_mesh(n: int):
    import jax
    import numpy as np
    from jax.sharding import Mesh

    return Mesh(np.array(jax.devices()[:n]), (AXIS,))


def replicate(tree, mesh):
    """Put a pytree on every device of the mesh (one copy each)."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
