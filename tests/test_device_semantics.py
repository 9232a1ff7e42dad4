"""A device count means the same run however the devices are laid out.

P processes of D devices train the run of one process of P*D devices: the count (and what
`auto` makes of it) is resolved over every process and recorded as such, and the vectors are the
same: bit for bit on 2 devices, to float32 rounding on 4 (the collectives sum in another order
across processes: docs/devices.md, "Determinism"). And a study's scheduling (`--together`,
`--devices`) leaves each run the vectors of the run trained alone on one device, unless
data-parallel runs are asked for (`--data-parallel`).

The processes run on 127.0.0.1 with simulated CPU devices (the count is fixed before JAX starts,
so every run here is a subprocess, with a timeout).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import error

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240
ARGS = ["--epochs", "1", "--dim", "8", "--quiet"]  # every other option at its default


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, zipf_text) -> Path:
    path = tmp_path_factory.mktemp("devsem") / "corpus.txt"
    zipf_text(path, n_tokens=20_000, vocab=300)
    return path


def _env(devices: int) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "PYTHONPATH": str(ROOT)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(argv, devices: int) -> None:
    proc = subprocess.run([sys.executable, "-m", "sg_jax", "train", *map(str, argv)], capture_output=True, text=True,
                          env=_env(devices), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _train_processes(argv, processes: int, devices_each: int) -> None:
    address = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen([sys.executable, "-m", "sg_jax", "train", *map(str, argv), "--coordinator", address,
                               "--num-processes", str(processes), "--process-id", str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(devices_each))
             for i in range(processes)]
    try:
        results = [(p.wait(timeout=TIMEOUT), p.communicate()[1]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for code, err in results:
        assert code == 0, err[-3000:]


def _recorded(out: Path) -> dict:
    config = json.loads((out / "config.json").read_text())
    return {key: config[key] for key in ("devices", "sync_every", "split_batch", "sync_combine")}


def _tables(out: Path):
    from sg_jax.api import load_model

    model = load_model(out)
    return np.asarray(model.wv.vectors), model.output_vectors, [r["loss"] for r in model.history]


# ------------------------------------------------------------------------------ the count, resolved once


class _Device:
    def __init__(self, id: int, process_index: int):
        self.id, self.process_index = id, process_index


def test_the_count_is_every_process_devices_and_shared_evenly(monkeypatch):
    """resolve_devices counts the devices of every process (jax.device_count(), not the local
    count), refuses a count the processes cannot share evenly, and the mesh takes an equal share
    of each process's devices, process by process."""
    import jax

    from sg_jax import mesh
    from sg_jax.config import Config
    from sg_jax.errors import ConfigError
    from sg_jax.resolved import resolve

    devices = [_Device(i, i // 2) for i in range(4)][::-1]  # 2 processes of 2, listed out of order
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "device_count", lambda: 4)
    monkeypatch.setattr(jax, "local_device_count", lambda: 2)
    monkeypatch.setattr(jax, "devices", lambda *a: list(devices))
    assert mesh.resolve_devices(None) == 4
    assert mesh.resolve_devices(4) == 4 and mesh.resolve_devices(2) == 2
    assert resolve(Config(devices=None), mesh.resolve_devices(None)).config == Config(
        devices=4, sync_every=8, pool_group=64, sync_combine="trust", batch_size=1024)
    assert resolve(Config(devices=2), mesh.resolve_devices(2)).config.sync_every == 64
    for bad in (1, 3):
        with pytest.raises(ConfigError, match=f"devices={bad} cannot be shared by the 2 processes"):
            mesh.resolve_devices(bad)
    with pytest.raises(ConfigError, match="devices=6 but only 4 device"):
        mesh.resolve_devices(6)
    assert [(d.process_index, d.id) for d in mesh.mesh_devices(4)] == [(0, 1), (0, 0), (1, 3), (1, 2)]
    assert [d.process_index for d in mesh.mesh_devices(2)] == [0, 1]  # one of each process's


def test_a_multi_process_train_defaults_to_every_process_devices():
    """`sg-jax train` without --devices: 1 device, or all of them in a run of several processes;
    an explicit count is kept."""
    from sg_jax import cli
    from sg_jax.cli.options import config_from_args

    def devices(*argv):
        return config_from_args(cli.build_parser().parse_args(["train", "--out", "o", *argv])).devices

    several = ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"]
    assert devices() == 1
    assert devices(*several) is None  # resolved to the global count when JAX has started
    assert devices(*several, "--devices", "4") == 4 and devices("--devices", "2") == 2


# ------------------------------------------------------------------------------ processes against one process


def test_two_processes_of_one_device_are_one_process_of_two_devices(corpus, tmp_path):
    """Under the defaults (no --devices): the same recorded count and sync interval as one
    process with --devices 2, and the same vectors, bit for bit (input and output tables)."""
    single, multi = tmp_path / "single", tmp_path / "multi"
    _train(["--corpus", corpus, "--out", single, *ARGS, "--devices", "2"], devices=2)
    _train_processes(["--corpus", corpus, "--out", multi, *ARGS], processes=2, devices_each=1)
    assert _recorded(multi) == _recorded(single)
    assert _recorded(multi)["devices"] == 2 and _recorded(multi)["sync_every"] == 64
    assert (multi / "vectors.txt").read_bytes() == (single / "vectors.txt").read_bytes()
    (w_a, out_a, loss_a), (w_b, out_b, loss_b) = _tables(single), _tables(multi)
    assert np.array_equal(w_a, w_b) and np.array_equal(out_a, out_b) and loss_a == loss_b


def test_two_processes_of_two_devices_are_one_process_of_four_devices(corpus, tmp_path):
    """4 devices as 2 x 2: the same recorded run (sync every 8, the capped sum), vectors equal
    to float32 rounding: gloo sums each quarter of a buffer around a ring starting at another
    device, the in-process all-reduce sums devices 0..3 in order (docs/devices.md)."""
    single, multi = tmp_path / "single", tmp_path / "multi"
    _train(["--corpus", corpus, "--out", single, *ARGS, "--devices", "4"], devices=4)
    _train_processes(["--corpus", corpus, "--out", multi, *ARGS], processes=2, devices_each=2)
    assert _recorded(multi) == _recorded(single)
    assert _recorded(multi)["devices"] == 4 and _recorded(multi)["sync_every"] == 8
    (w_a, out_a, loss_a), (w_b, out_b, loss_b) = _tables(single), _tables(multi)
    np.testing.assert_allclose(w_b, w_a, rtol=0, atol=1e-6)  # seen: 6e-8 (|W| < 0.8)
    np.testing.assert_allclose(out_b, out_a, rtol=0, atol=1e-6)  # seen: 1.2e-7 (|W'| < 1.6)
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-6)


# ------------------------------------------------------------------------------ a study's scheduling


def test_a_study_scheduling_leaves_each_run_its_one_device_vectors(tmp_path):
    """On 2 devices: the default study (2 runs together), --together 1 and --devices 1 give each
    run the vectors of the run trained alone on one device (bit for bit one at a time, to float32
    rounding together: tests/test_together.py); only --data-parallel trains over 2 devices,
    records it, and says so in the reproduce command."""
    code = f"""
        import json, sys
        from pathlib import Path
        import numpy as np
        from sg_jax import cli
        from sg_jax.api import load_model
        from sg_jax.study import report
        from sg_jax.study.records import read_runs

        out = Path({str(tmp_path)!r})
        grid = ["--corpus", "toy:groups", "--windows", "1,3", "--dims", "6", "--epochs", "1", "--quiet"]
        studies = {{"default": [], "one-at-a-time": ["--together", "1"], "one-device": ["--devices", "1"],
                    "data-parallel": ["--data-parallel"]}}
        for name, extra in studies.items():
            assert cli.main(["sweep", *grid, "--devices", "2", *extra, "--out", str(out / name)]) == 0, name
        for window in (1, 3):
            run = f"w{{window}}_d6_s0"
            assert cli.main(["train", "--corpus", "toy:groups", "--window", str(window), "--dim", "6",
                             "--epochs", "1", "--min-count", "5", "--quiet", "--out", str(out / "alone" / run)]) == 0
            alone = load_model(out / "alone" / run)
            for name in studies:
                model = load_model(out / name / run)
                diff = float(np.abs(model.wv.vectors - alone.wv.vectors).max())
                same = bool(np.array_equal(model.wv.vectors, alone.wv.vectors)
                            and np.array_equal(model.output_vectors, alone.output_vectors))
                print(json.dumps({{"study": name, "run": run, "devices": model.config.devices, "diff": diff,
                                   "same": same}}))
        for name in studies:
            records = read_runs(out / name / "runs.jsonl")
            print(json.dumps({{"study": name, "argv": report.reproduce_argv(records, out / name),
                               "together": records[0]["device"]["together"], "used": records[0]["device"]["used"]}}))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=_env(2), timeout=2 * TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    runs = [r for r in lines if "run" in r]
    studies = {r["study"]: r for r in lines if "argv" in r}
    assert len(runs) == 8 and len(studies) == 4
    for r in runs:
        if r["study"] == "data-parallel":
            assert r["devices"] == 2 and r["diff"] > 1e-3, r  # another run: two replicas, synced
        else:
            assert r["devices"] == 1 and r["diff"] <= 2e-5, r  # the run alone, to float32 rounding
            if r["study"] != "default":
                assert r["same"], r  # one at a time: the one-device program itself
    assert studies["default"]["together"] == 2 and studies["one-at-a-time"]["together"] == 1
    assert studies["default"]["used"] == studies["one-at-a-time"]["used"] == 2
    for name, s in studies.items():
        argv = s["argv"]
        assert ("--data-parallel" in argv) == (name == "data-parallel"), argv
        sync = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] == "--sync-every"]
        assert sync == (["64"] if name == "data-parallel" else []), argv  # what the runs trained with


def test_data_parallel_runs_train_one_at_a_time(capsys, tmp_path):
    message = error(capsys, "sweep", "--corpus", "toy:groups", "--windows", "1", "--dims", "4", "--epochs", "1",
                    "--devices", "1", "--together", "2", "--data-parallel", "--out", tmp_path / "s")
    assert message.startswith("together 2 cannot be used with data_parallel"), message
    assert not (tmp_path / "s").exists()


def test_a_study_trained_data_parallel_continues_only_with_data_parallel(capsys, tmp_path):
    """A study whose runs trained data-parallel (with --together 1 on several devices, before
    --data-parallel existed) is not continued as one-device runs: the refusal says how."""
    from conftest import run

    out = tmp_path / "s"
    grid = ["sweep", "--corpus", "toy:groups", "--windows", "1", "--dims", "4", "--epochs", "1", "--quiet",
            "--devices", "1", "--out", out]
    code, _, err = run(capsys, *grid)
    assert code == 0, err
    record = json.loads((out / "runs.jsonl").read_text())
    record["config"].update(devices=2, sync_every=64)  # as such a study recorded its runs
    (out / "runs.jsonl").write_text(json.dumps(record) + "\n")
    before = (out / "runs.jsonl").read_bytes()
    message = error(capsys, *grid[:-2], "--windows", "1,2", "--out", out)
    assert message == (f"{out} holds runs trained data-parallel over 2 devices (run w1_d4_s0); continue that "
                       f"study with --data-parallel, or choose another --out"), message
    assert (out / "runs.jsonl").read_bytes() == before and not (out / "w2_d4_s0").exists()
