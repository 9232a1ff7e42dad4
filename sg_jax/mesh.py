"""Devices: which ones a run trains on, and the mesh that spans them.

sg_jax trains data-parallel over a one-axis mesh ("data"): every device holds the whole of both
tables, takes its own share of each step's targets (device d of n builds batch s*n + d of the
epoch's visiting order, on the device), and runs `sync_every` sparse steps on its replica (auto:
64 on 2 devices, 8 on more; `Config.sync_interval`). Then
the replicas' changes since the last sync are summed over the mesh (one all-reduce of the tables)
and added to the tables every replica started from. For SGD this is the update
of one large step whose batch is the union of the devices' batches, split into per-device
sequences of small steps (the deltas are summed, not averaged: averaging would divide every
example's step by n). By default each row's sum is held to the trust region as one device's step
over the union of the batches would hold it (`sync_combine="trust"`, auto under the trust region;
without it `"cap"`: the sum capped at twice the longest change one replica made to the row), which
stops frequent rows overshooting n-fold on 4 or more devices. See docs/devices.md for the design
and its measurements. With `shard_tables` each device holds 1/n of the tables' rows instead of a
copy, and every step is one synchronous step over all the devices' batches
(`sg_jax.parallel.sharded`).

On a CPU the cores become devices only if XLA is told so before JAX starts
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`); the command line arranges this
(`host_device_flags`), a Python user sets the variable before importing jax. A run trains on one
device unless asked for more (`devices=N`, or None for all): see docs/devices.md for why.

A device count is always the count over every process of the run (`resolve_devices`): P
processes of D devices train, and record, the run of one process of P*D devices, with the same
batches and keys on device d of the mesh, and the same choices made from the count.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time

from sg_jax.errors import ConfigError
from sg_jax.processes.rendezvous import check_launch

AXIS = "data"
_FLAG = "--xla_force_host_platform_device_count"
# The most host devices one process simulates on a CPU. XLA makes every one of them up front
# (256 take about 1.5 s to create on a 2-core machine; 100,000 never finish), and past a few per
# core they only share the same cores. On accelerators a run uses the devices present.
MAX_HOST_DEVICES = 256


def host_device_flags(count: int | None, environ=os.environ) -> None:
    """Before JAX starts: make `count` (None: every core, at most MAX_HOST_DEVICES) host CPU
    devices, unless XLA_FLAGS already chooses a count. Harmless on GPU and TPU (it only shapes
    the host platform). A count over MAX_HOST_DEVICES is refused (ConfigError)."""

    if count is not None and count > MAX_HOST_DEVICES:
        raise ConfigError(f"devices={count} is more than a CPU simulates (at most {MAX_HOST_DEVICES} host devices "
                          f"per process; with accelerators, the devices present)")
    flags = environ.get("XLA_FLAGS", "")
    if _FLAG in flags or "jax" in sys.modules:  # chosen already, or too late: JAX has started
        return
    n = count if count is not None else min(os.cpu_count() or 1, MAX_HOST_DEVICES)
    environ["XLA_FLAGS"] = f"{flags} {_FLAG}={max(1, n)}".strip()


def check_xla_flags(environ=os.environ, *, probe_seconds: float = 120.0) -> None:
    """Before JAX starts: refuse an XLA_FLAGS that XLA would end the process over (an unknown
    flag, a value it cannot read, a host device count it would take forever to make), with a
    one-line ConfigError instead of XLA's fatal error. The host device count is checked here;
    any other flag is tried in a short-lived child process, since only XLA knows its flags."""

    flags = environ.get("XLA_FLAGS", "")
    for value in re.findall(rf"(?:^|\s){_FLAG}=(\S*)", flags):
        if not value.isdigit() or not 1 <= int(value) <= MAX_HOST_DEVICES:
            raise ConfigError(f"XLA_FLAGS sets {_FLAG}={value[:40]}; it must be a whole number from 1 to "
                              f"{MAX_HOST_DEVICES} (the most host devices a CPU simulates)")
    others = re.sub(rf"(?:^|\s){_FLAG}=\S*", " ", flags).strip()
    if not others:
        return
    env = {**environ, "XLA_FLAGS": others, "JAX_PLATFORMS": "cpu"}  # the CPU reads every XLA flag, GPU ones too
    try:
        probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices('cpu')"], env=env,
                               capture_output=True, text=True, timeout=probe_seconds)
    except subprocess.TimeoutExpired:  # no verdict: leave it to the run
        return
    if probe.returncode != 0:
        raise ConfigError(f"XLA_FLAGS is refused by XLA: {_xla_complaint(probe.stderr)} (correct or unset XLA_FLAGS)")


def _xla_complaint(stderr: str) -> str:
    """The message of XLA's first error or fatal log line ("E1202 08:14:29.5 123 file.cc:63] msg")."""

    for line in stderr.splitlines():
        m = re.match(r"[EF]\d{4} [\d:.]+\s+\d+ [^\]]*\] (.*)", line)
        if m:
            return m.group(1).strip()[:200]
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "it did not start"


def resolve_devices(requested: int | None) -> int:
    """The device count a run uses, counted over every process of the run (jax.device_count()
    once jax.distributed has started, not this process's devices): all of them when None, else
    `requested` (refused when more than exist). Several processes take equal shares of the
    mesh, so a count they cannot share evenly is refused: with P processes it is a multiple of P."""
    # JAX must not start yet: the command line imports this module before it sets XLA_FLAGS
    import jax

    available, processes = jax.device_count(), jax.process_count()
    if requested is None:
        return available
    if processes > 1 and requested % processes:
        raise ConfigError(f"devices={requested} cannot be shared by the {processes} processes of the run (each "
                          f"trains on an equal share of the devices: give a multiple of {processes}, or all for "
                          f"every process's devices, {available} here)")
    if requested > available:
        hint = "" if jax.default_backend() != "cpu" else \
            f" (a CPU simulates at most {MAX_HOST_DEVICES})" if requested > MAX_HOST_DEVICES else \
            f" (on a CPU, set XLA_FLAGS={_FLAG}={requested} before JAX starts; the command line does)"
        raise ConfigError(f"devices={requested} but only {available} device(s) exist{hint}")
    return requested


def mesh_devices(n: int) -> list:
    """The n devices of a mesh, in mesh order: the first n devices; with several processes, the
    first n/P of each process's devices, process by process (so that every process takes part,
    and a process's share is the same devices whatever n is)."""
    # JAX must not start yet: the command line imports this module before it sets XLA_FLAGS
    import jax

    if jax.process_count() == 1:
        return jax.devices()[:n]
    share = n // jax.process_count()
    by_process: dict[int, list] = {}
    for d in jax.devices():
        by_process.setdefault(d.process_index, []).append(d)
    return [d for p in sorted(by_process) for d in by_process[p][:share]]


def make_mesh(n: int):
    # JAX must not start yet: the command line imports this module before it sets XLA_FLAGS
    import numpy as np
    from jax.sharding import Mesh

    return Mesh(np.array(mesh_devices(n)), (AXIS,))


def replicate(tree, mesh):
    """Put a pytree on every device of the mesh (one copy each). Across processes every process
    passes the same values and provides the copies on its own devices."""
    # JAX must not start yet: the command line imports this module before it sets XLA_FLAGS
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
    ConfigError within `timeout` seconds when the coordinator does not answer; other failures
    (a missing or dead peer) end the process from JAX's C++ runtime. The command line therefore
    first meets the other processes itself and runs this in a supervised child process
    (`sg_jax.processes.rendezvous`, `sg_jax.processes.supervisor`)."""

    host, port = check_launch(coordinator, num_processes, process_id, timeout)
    if process_id != 0:  # the runtime aborts the process when it cannot connect: look first
        _wait_for(host, port, timeout, f"process {process_id} of {num_processes}", coordinator)
    # JAX must not start yet: the command line imports this module before it sets XLA_FLAGS
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

    # JAX must not start yet: the command line imports this module before it sets XLA_FLAGS
    import jax
    import numpy as np

    if jax.process_count() == 1:
        return
    # JAX must not start yet: the command line imports this module before it sets XLA_FLAGS
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(value.encode("utf-8")).digest()[:16], dtype=np.uint32)
    every = np.asarray(multihost_utils.process_allgather(digest)).reshape(jax.process_count(), -1)
    differ = [i for i in range(len(every)) if not np.array_equal(every[i], every[0])]
    if differ:
        raise ConfigError(f"the processes disagree on the {what}: process {differ[0]} sees a different one than "
                          f"process 0; start every process with the same corpus and options")
