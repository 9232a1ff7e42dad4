"""Devices: which ones a run trains on, and the mesh that spans them.

sg_jax trains data-parallel over a one-axis mesh ("data"): every device holds the whole of both
tables, takes its own share of each step's targets (device d of n builds batch s*n + d of the
epoch's visiting order, on the device), and runs `sync_every` sparse steps on its replica (auto:
64 on 2 devices, 8 on more; `Config.sync_interval`). Then
the replicas' changes since the last sync are summed over the mesh (one all-reduce of the tables)
and added to the tables every replica started from. For SGD this is the update
of one large step whose batch is the union of the devices' batches, split into per-device
sequences of small steps (the deltas are summed, not averaged: averaging would divide every
example's step by n). By default a row's sum is capped at twice the longest change one replica
made to it (`sync_combine="cap"`), which stops frequent rows overshooting n-fold on 4 or more
devices. See docs/devices.md for the design and its measurements. With `shard_tables` each
device holds 1/n of the tables' rows instead of a copy, and every step is one synchronous step
over all the devices' batches (`sg_jax.sharded`).

On a CPU the cores become devices only if XLA is told so before JAX starts
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`); the command line arranges this
(`host_device_flags`), a Python user sets the variable before importing jax. A run trains on one
device unless asked for more (`devices=N`, or None for all): see docs/devices.md for why.
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
    """Put a pytree on every device of the mesh (one copy each). Across processes every process
    passes the same values and provides the copies on its own devices."""
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    sharding = NamedSharding(mesh, PartitionSpec())
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)


# ------------------------------------------------------------------------------ several processes


def initialize_distributed(coordinator: str, num_processes: int, process_id: int, *, timeout: float = 60.0) -> None:
    """Join a multi-process run (jax.distributed), before anything else uses JAX: process 0 serves
    the coordinator at HOST:PORT and every process contributes its local devices to one mesh.
    On CPUs the processes exchange data through gloo collectives. Fails with a one-line
    ConfigError within `timeout` seconds when the coordinator or a peer does not answer."""
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ConfigError(f"num_processes must be >= 1, got {num_processes!r}")
    if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ConfigError(f"process_id must be in [0, {num_processes - 1}], got {process_id!r}")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"coordinator must be HOST:PORT, got {coordinator!r}")
    if not timeout > 0:
        raise ConfigError(f"the coordinator timeout must be > 0 seconds, got {timeout}")
    if process_id != 0:  # the runtime aborts the process when it cannot connect: look first
        _wait_for(host, int(port), timeout, f"process {process_id} of {num_processes}", coordinator)
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=int(max(1, timeout)))
    except Exception as e:  # the runtime's errors are many lines; say what happened in one
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ConfigError(f"process {process_id} of {num_processes} could not join the run at {coordinator} "
                          f"within {timeout:g} s ({first})") from None


def _wait_for(host: str, port: int, timeout: float, who: str, coordinator: str) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, timeout)):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ConfigError(f"{who} could not join the run at {coordinator} within {timeout:g} s "
                                  f"(the coordinator does not answer: {e.strerror or e})") from None
            time.sleep(0.2)


def agree_across_processes(what: str, value: str) -> None:
    """Refuse a multi-process run whose processes see different `value`s (a corpus fingerprint,
    a vocabulary, a config): every process raises the same one-line error."""
    import hashlib

    import jax
    import numpy as np

    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(value.encode("utf-8")).digest()[:16], dtype=np.uint32)
    every = np.asarray(multihost_utils.process_allgather(digest)).reshape(jax.process_count(), -1)
    differ = [i for i in range(len(every)) if not np.array_equal(every[i], every[0])]
    if differ:
        raise ConfigError(f"the processes disagree on the {what}: process {differ[0]} sees a different one than "
                          f"process 0; start every process with the same corpus and options")
