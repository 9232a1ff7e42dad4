"""Words/s against the device count: the data-parallel mesh on 1, 2, 4, 8 devices.

    python benchmarks/bench_devices.py --devices 1,2,4,8 --epochs 1 --out benchmarks/results/devices
    python benchmarks/bench_devices.py --devices 2,4,8 --sync-every 8,16,32,64 --seeds 0,1 --epochs 5 ...
    python benchmarks/bench_devices.py --devices 4,8 --sync-combine cap,trust --repeats 3 --epochs 5 ...

Each count trains in its own process (XLA's host device count is fixed when JAX starts), on the
bundled Brown corpus with the default skip-gram settings; the rows interleave over `--repeats`
rounds and the medians are reported, with WordSim-353 and the analogy accuracy of each run. On
a CPU the devices are simulated host devices: with more devices than cores the figures show the
mesh's overhead, which is worth knowing. Throughput is the steady rate (after the first jitted
call, which includes compilation). `--sync-every` runs each count above 1 at each interval,
`--sync-combine` with each rule of combining the replicas' changes (the table names the rule each
run recorded), and `--seeds` trains every row with each seed (the scores are then means, with
their range).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import common

CHILD = """
import json, sys, time
import sg_jax
from sg_jax.evaluation import evaluate_analogies, evaluate_similarity
args = json.loads(sys.argv[1])
t = time.perf_counter()
model = sg_jax.train_model(args["corpus"], epochs=args["epochs"], dim=args["dim"], devices=args["devices"],
                           sync_every=args["sync_every"], sync_combine=args["sync_combine"], seed=args["seed"])
h = model.history
steady = (h[-1]["words"] - h[0]["words"]) / (h[-1]["seconds"] - h[0]["seconds"])
print(json.dumps({"devices": model.config.devices, "sync_every": model.config.sync_every,
                  "sync_combine": model.config.sync_combine, "seed": args["seed"],
                  "words_per_second": steady, "wall_s": time.perf_counter() - t,
                  "wordsim353": evaluate_similarity(model.wv).spearman,
                  "analogy": evaluate_analogies(model.wv).accuracy}))
"""


def run_one(devices: int, sync_every: int | None, combine: str, seed: int, args, one_core: bool = False) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if one_core else None
    spec = json.dumps({"corpus": args.corpus, "epochs": args.epochs, "dim": args.dim, "devices": devices,
                       "sync_every": sync_every, "sync_combine": combine, "seed": seed})
    proc = subprocess.run([sys.executable, "-c", CHILD, spec], capture_output=True, text=True, env=env,
                          preexec_fn=pin)
    if proc.returncode != 0:  # e.g. a divergence: reported in the table, not hidden
        return {"devices": devices, "sync_every": sync_every, "sync_combine": combine, "seed": seed, "one_core": one_core,
                "error": proc.stderr.strip().splitlines()[-1], "loadavg": os.getloadavg()[0]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["loadavg"] = os.getloadavg()[0]
    out["one_core"] = one_core
    return out


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _syncs(text: str) -> list[int | None]:
    return [None if x == "auto" else int(x) for x in text.split(",")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", default="1,2,4,8", help="comma-separated device counts")
    p.add_argument("--sync-every", default="auto", help="comma-separated steps between syncs ('auto': the "
                   "default for each count); every device count above 1 runs each")
    p.add_argument("--sync-combine", default="auto", help="comma-separated rules combining the replicas' "
                   "changes (auto, cap, sum, mean, trust); every device count above 1 runs each")
    p.add_argument("--corpus", default="default")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="the seed of every run (unless --seeds)")
    p.add_argument("--seeds", help="comma-separated seeds: each row trains each (scores are their means)")
    p.add_argument("--one-core", action="store_true", help="first a row of 1 device pinned to one core: what "
                   "one device does without the intra-op threads XLA spreads over the other cores")
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    args = p.parse_args(argv)
    seeds = _ints(args.seeds) if args.seeds else [args.seed]
    # a row: (devices, sync_every, sync_combine, pinned to one core)
    combines = args.sync_combine.split(",")
    rows = [(n, s, c, False) for n in _ints(args.devices)
            for s in (_syncs(args.sync_every) if n > 1 else [None]) for c in (combines if n > 1 else ["auto"])]
    if args.one_core:
        rows.insert(0, (1, None, "auto", True))
    runs: dict[tuple, list[dict]] = {row: [] for row in rows}
    for _ in range(args.repeats):
        for seed in seeds:
            for row in rows:
                runs[row].append(run_one(*row[:3], seed, args, one_core=row[3]))
                print(json.dumps(runs[row][-1]), flush=True)

    def ok(row):
        return [r for r in runs[row] if "error" not in r]

    def median_wps(row):
        good = ok(row)
        return statistics.median(r["words_per_second"] for r in good) if good else None

    def spread(values, fmt):
        mean = statistics.fmean(values)
        return fmt(mean) if len(values) == 1 else f"{fmt(mean)} ({fmt(min(values))}–{fmt(max(values))})"

    base = median_wps(rows[0])
    lines = ["| devices | sync_every | combine | words/s (median) | vs first row | WordSim-353 (mean of seeds) | "
             "analogies | runs | load avg |", "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        n, good, loads = row[0], ok(row), [r["loadavg"] for r in runs[row]]
        sync = next((r["sync_every"] for r in good), row[1]) if n > 1 else "– (one core)" if row[3] else "–"
        combine = next((r.get("sync_combine") for r in good), row[2]) if n > 1 else "–"
        load = f"{min(loads):.1f}–{max(loads):.1f}"
        if not good:
            lines.append(f"| {n} | {sync} | {combine} | failed: {runs[row][-1]['error'][:120]} | | | | "
                         f"0/{len(runs[row])} | {load} |")
            continue
        wps = median_wps(row)
        lines.append(f"| {n} | {sync} | {combine} | {wps:,.0f} | {wps / base:.2f} | "
                     f"{spread([r['wordsim353'] for r in good], lambda v: f'{v:.3f}')} | "
                     f"{spread([100 * r['analogy'] for r in good], lambda v: f'{v:.2f}%')} | "
                     f"{len(good)}/{len(runs[row])} | {load} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        record = {"args": vars(args), "runs": [r for row in rows for r in runs[row]], "machine": common.machine(),
                  "command": common.command_line()}
        common.write_outputs(args.out, record, "# Words/s against the device count\n\n" + table + "\n\n"
                             + common.machine_markdown(record["machine"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
