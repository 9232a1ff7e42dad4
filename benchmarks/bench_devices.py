"""Words/s against the device count: the data-parallel mesh on 1, 2, 4, 8 devices.

    python benchmarks/bench_devices.py --devices 1,2,4,8 --epochs 1 --out benchmarks/results/devices

Each count trains in its own process (XLA's host device count is fixed when JAX starts), on the
bundled Brown corpus with the default skip-gram settings; the rows interleave over `--repeats`
rounds and the medians are reported, with WordSim-353 and the analogy accuracy of each run. On
a CPU the devices are simulated host devices: with more devices than cores the figures show the
mesh's overhead, which is worth knowing. Throughput is the steady rate (after the first jitted
call, which includes compilation).
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
                           seed=args["seed"])
h = model.history
steady = (h[-1]["words"] - h[0]["words"]) / (h[-1]["seconds"] - h[0]["seconds"])
print(json.dumps({"devices": model.config.devices, "words_per_second": steady, "wall_s": time.perf_counter() - t,
                  "wordsim353": evaluate_similarity(model.wv).spearman,
                  "analogy": evaluate_analogies(model.wv).accuracy}))
"""


def run_one(devices: int, args) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    spec = json.dumps({"corpus": args.corpus, "epochs": args.epochs, "dim": args.dim, "devices": devices,
                       "seed": args.seed})
    proc = subprocess.run([sys.executable, "-c", CHILD, spec], capture_output=True, text=True, env=env)
    if proc.returncode != 0:  # e.g. a divergence: reported in the table, not hidden
        return {"devices": devices, "error": proc.stderr.strip().splitlines()[-1], "loadavg": os.getloadavg()[0]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["loadavg"] = os.getloadavg()[0]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", default="1,2,4,8", help="comma-separated device counts")
    p.add_argument("--corpus", default="default")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    args = p.parse_args(argv)
    counts = [int(x) for x in args.devices.split(",")]
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    for _ in range(args.repeats):
        for n in counts:
            runs[n].append(run_one(n, args))
            print(json.dumps(runs[n][-1]), flush=True)
    def median_wps(n):
        ok = [r["words_per_second"] for r in runs[n] if "error" not in r]
        return statistics.median(ok) if ok else None

    base = median_wps(counts[0])
    lines = ["| devices | words/s (median) | vs first row | WordSim-353 | analogies | load avg |",
             "|---:|---:|---:|---:|---:|---:|"]
    for n in counts:
        wps, last = median_wps(n), runs[n][-1]
        if wps is None:
            lines.append(f"| {n} | failed: {last['error'][:120]} | | | | {last['loadavg']:.1f} |")
            continue
        lines.append(f"| {n} | {wps:,.0f} | {wps / base:.2f} | {last['wordsim353']:.3f} | "
                     f"{100 * last['analogy']:.2f}% | {last['loadavg']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        record = {"args": vars(args), "runs": {str(n): r for n, r in runs.items()}, "machine": common.machine(), "command": common.command_line()}
        common.write_outputs(args.out, record, "# Words/s against the device count\n\n" + table + "\n\n"
                             + common.machine_markdown(record["machine"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
