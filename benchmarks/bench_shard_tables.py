"""Tables sharded by vocabulary row (--shard-tables): memory per device, words/s, and the loss
curve against the replicated layout.

    python benchmarks/bench_shard_tables.py --out benchmarks/results/shard_tables

Three parts, each device count in its own process (XLA's host device count is fixed when JAX
starts; on a CPU the devices are simulated host devices sharing the cores):

large      8 devices, a generated Zipf corpus over V = 2,000,000 words, dim 300, SGD, sharded only
           (8 replicas would need 8 copies of the 4.8 GB tables): the bytes of each device's
           shards of W, W' and the optimizer state against the whole tables, and the steady
           words/s over a few hundred steps (the first call, which compiles, excluded).
compare    8 devices, V = 200,000, dim 300: the replicated layout synced every step
           (sync_every 1, sync_combine sum) and the sharded one from the same state: each step's
           loss and the final tables, with the largest differences, and the memory per device.
fetch      (run on its own: --parts fetch) 8 devices, V = 200,000, sharded: words/s with each
           collective that can deliver the fetched rows.
bundled    2 devices, the bundled Brown corpus, default settings, 1 epoch: words/s of the
           replicated layout (sync_every 8, the default, and 1) against --shard-tables, with each
           of the collectives that can deliver the fetched rows (psum_scatter, all_to_all, psum).

The large and compare parts drive the jitted calls directly (sg_jax.train's plan and calls)
for a fixed number of steps, so that no host copy of the tables is made at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import common

CHILD = r"""
import dataclasses, json, os, sys, time
import jax, numpy as np
args = json.loads(sys.argv[1])
import sg_jax.parallel.sharded as sharded
from sg_jax.config import Config
from sg_jax.mesh import make_mesh, replicate, resolve_devices
from sg_jax.train import Calls, Position, make_plan, train
from sg_jax.step import init_state


def per_device_bytes(state):
    # bytes of every leaf's pieces on each device, by leaf kind
    out = {}
    for name, part in (("w_in", state.params.w_in), ("w_out", state.params.w_out),
                       ("opt_state", state.opt_state)):
        for leaf in jax.tree.leaves(part):
            for shard in leaf.addressable_shards:
                key = str(shard.device.id)
                out.setdefault(key, {}).setdefault(name, 0)
                out[key][name] += shard.data.nbytes
    return out


def drive(config, vocab, enc, steps, sharded_layout):
    # run `steps` steps (whole calls) from a fresh state; -> (state, per-step losses, examples, call records)
    plan = make_plan(config, vocab.counts, enc.ids, enc.offsets)
    mesh = make_mesh(config.devices)
    if sharded_layout:
        state = plan.shards.init()
    else:
        state = replicate(init_state(config, len(vocab), plan.optimizer), mesh)
    tables = replicate(plan.tables, mesh)
    jax.block_until_ready(state)
    calls = Calls(config, plan, enc.ids, enc.offsets, np.asarray(jax.device_get(state.key)), Position(), mesh=mesh,
                  n_dev=config.devices)
    losses, examples, records, done = [], [], [], 0
    for call in calls:
        t = time.perf_counter()
        state, stats = plan.run_steps(state, call.data, tables, call.epoch_key, call.first, call.steps)
        l = np.asarray(stats.losses)[: call.done]
        records.append({"steps": call.done, "words": call.words, "seconds": time.perf_counter() - t,
                        "loss": float(l.sum() / np.asarray(stats.examples)[: call.done].sum())})
        losses += l.tolist()
        examples += np.asarray(stats.examples)[: call.done].tolist()
        done += call.done
        if done >= steps:
            break
    return state, np.array(losses), np.array(examples), records, plan


def steady(records):
    rest = records[1:] or records
    return sum(r["words"] for r in rest) / sum(r["seconds"] for r in rest)


kind = args["kind"]
if kind in ("large", "compare"):
    from sg_jax.synthetic import zipf_corpus
    t = time.perf_counter()
    vocab, enc = zipf_corpus(args["tokens"], args["vocab"], seed=0)
    gen_s = time.perf_counter() - t
    base = Config(dim=args["dim"], min_count=1, devices=args["devices"], sync_every=1, seed=0,
                  steps_per_call=args["steps_per_call"], optimizer=args["optimizer"], lr=args["lr"])
    out = {"kind": kind, "V": len(vocab), "tokens": args["tokens"], "corpus_seconds": gen_s, "config": base.to_dict()}
    if kind == "large":
        sharded.FETCH = args.get("fetch") or sharded.FETCH
        out["fetch"] = sharded.FETCH
        config = dataclasses.replace(base, shard_tables=True)
        t = time.perf_counter()
        state, losses, examples, records, plan = drive(config, vocab, enc, args["steps"], True)
        out.update(wall_seconds=time.perf_counter() - t, records=records, words_per_second=steady(records),
                   steps=len(losses), loss_first=float(losses[0] / examples[0]),
                   loss_last=float(losses[-1] / examples[-1]), per_device=per_device_bytes(state),
                   whole_bytes={"w_in": len(vocab) * config.dim * 4, "w_out": len(vocab) * config.dim * 4},
                   batch_size=plan.batch_size)
    else:
        runs = {}
        for shard in (False, True):
            config = dataclasses.replace(base, shard_tables=shard)
            t = time.perf_counter()
            state, losses, examples, records, plan = drive(config, vocab, enc, args["steps"], shard)
            host = sharded.host_state(state, config, len(vocab))
            runs[shard] = (losses, examples, host)
            out["sharded" if shard else "replicated"] = {
                "wall_seconds": time.perf_counter() - t, "records": records, "words_per_second": steady(records),
                "per_device": per_device_bytes(state)}
            del state
        (la, ea, ha), (lb, eb, hb) = runs[False], runs[True]
        assert np.array_equal(ea, eb)
        out["steps"] = len(la)
        out["loss_per_example"] = {"replicated": (la / ea).tolist(), "sharded": (lb / eb).tolist()}
        out["max_rel_loss_diff"] = float(np.max(np.abs(lb - la) / np.abs(la)))
        out["max_abs_table_diff"] = {name: float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                                     for name, a, b in (("w_in", ha.params.w_in, hb.params.w_in),
                                                        ("w_out", ha.params.w_out, hb.params.w_out))}
        out["max_abs_table_value"] = float(np.max(np.abs(np.asarray(ha.params.w_out))))
else:  # bundled
    from sg_jax.data.corpus import load_corpus
    vocab, enc, _ = load_corpus("default", min_count=5)
    config = Config(devices=args["devices"], epochs=1, sync_every=args["sync_every"],
                    shard_tables=args["shard"], seed=0)
    if args["shard"]:
        sharded.FETCH = args["fetch"]
    result = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)
    h = result.history
    out = {"kind": kind, "shard": args["shard"], "fetch": args["fetch"], "sync_every": args["sync_every"],
           "words_per_second": (h[-1]["words"] - h[0]["words"]) / (h[-1]["seconds"] - h[0]["seconds"]),
           "final_loss": result.final_loss, "V": len(vocab)}
out["loadavg"] = os.getloadavg()[0]
with open("/proc/self/status") as f:  # the process's peak resident memory (all simulated devices together)
    out["peak_rss_bytes"] = next((int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:")), None)
print(json.dumps(out))
"""


def run_child(spec: dict) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={spec['devices']}"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        return {**spec, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gib(n: float) -> str:
    return f"{n / 2**30:.3f} GiB"


def report(large: dict | None, compare: dict | None, bundled: list[dict]) -> str:
    out = ["# Tables sharded by vocabulary row (--shard-tables)", ""]
    if large and "error" not in large:
        whole = sum(large["whole_bytes"].values())
        rows = []
        for dev, parts in sorted(large["per_device"].items(), key=lambda kv: int(kv[0])):
            total = sum(parts.values())
            rows.append([dev, gib(parts.get("w_in", 0)), gib(parts.get("w_out", 0)), gib(parts.get("opt_state", 0)),
                         gib(total), f"{total / whole:.4f}"])
        out += [f"## V = {large['V']:,}, dim {large['config']['dim']}, {large['config']['devices']} devices, "
                f"{large['config']['optimizer']}",
                "", f"Whole tables (W and W', float32): {gib(whole)}. Each device's shards:", "",
                common.markdown_table(["device", "W", "W'", "optimizer state", "total", "of the whole tables"], rows),
                "", f"{large['steps']} steps of {large['batch_size']} targets per device; steady "
                f"{large['words_per_second']:,.0f} words/s (first call, with compilation, excluded); loss per "
                f"example {large['loss_first']:.4f} at the first step, {large['loss_last']:.4f} at the last; "
                f"{large['wall_seconds']:.0f} s in all.", ""]
    elif large:
        out += ["## large", "", f"failed: {large['error']}", ""]
    if compare and "error" not in compare:
        rep, sh = compare["replicated"], compare["sharded"]

        def dev0(r):
            return sum(r["per_device"]["0"].values())

        out += [f"## Against the replicated layout: V = {compare['V']:,}, dim {compare['config']['dim']}, "
                f"{compare['config']['devices']} devices, {compare['config']['optimizer']}, {compare['steps']} steps",
                "", common.markdown_table(
                    ["layout", "device 0 holds", "words/s (steady)"],
                    [["replicated, sync_every 1", gib(dev0(rep)), round(rep["words_per_second"])],
                     ["--shard-tables", gib(dev0(sh)), round(sh["words_per_second"])]]), "",
                f"Largest relative difference of a step's loss: {compare['max_rel_loss_diff']:.2e}; largest "
                f"absolute difference of the final tables: W {compare['max_abs_table_diff']['w_in']:.2e}, W' "
                f"{compare['max_abs_table_diff']['w_out']:.2e} (largest |W'| entry "
                f"{compare['max_abs_table_value']:.3g}).", ""]
        la, lb = compare["loss_per_example"]["replicated"], compare["loss_per_example"]["sharded"]
        picks = sorted({0, 1, len(la) // 4, len(la) // 2, 3 * len(la) // 4, len(la) - 1})
        out += [common.markdown_table(["step", "replicated loss", "sharded loss"],
                                      [[i + 1, f"{la[i]:.7f}", f"{lb[i]:.7f}"] for i in picks]), ""]
    elif compare:
        out += ["## compare", "", f"failed: {compare['error']}", ""]
    if bundled:
        base = next((r["words_per_second"] for r in bundled if not r.get("shard") and r.get("sync_every") == 8
                     and "error" not in r), None)
        rows = []
        for r in bundled:
            if "error" in r:
                rows.append([r.get("shard"), r.get("fetch"), r.get("sync_every"), "failed", r["error"][:80], "-"])
                continue
            rows.append(["--shard-tables" if r["shard"] else "replicated", r["fetch"] if r["shard"] else "-",
                         "-" if r["shard"] else r["sync_every"], round(r["words_per_second"]),
                         f"{r['words_per_second'] / base:.2f}" if base else "-", f"{r['final_loss']:.4f}"])
        out += ["## Bundled corpus (Brown), 2 devices, 1 epoch, default settings", "",
                common.markdown_table(["layout", "fetch", "sync_every", "words/s", "vs replicated (8)", "final loss"],
                                      rows), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="large,compare,bundled")
    p.add_argument("--large-vocab", type=int, default=2_000_000)
    p.add_argument("--large-tokens", type=int, default=8_000_000)
    p.add_argument("--large-steps", type=int, default=256)
    p.add_argument("--compare-vocab", type=int, default=200_000)
    p.add_argument("--compare-tokens", type=int, default=4_000_000)
    p.add_argument("--compare-steps", type=int, default=64)
    p.add_argument("--dim", type=int, default=300)
    p.add_argument("--devices", type=int, default=8)
    p.add_argument("--steps-per-call", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.005,
                   help="learning rate of the large and compare parts: 8 devices sum their batches' updates, and "
                        "word2vec's 0.025 diverges on a Zipf corpus without structure at that effective batch")
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    large = compare = None
    bundled: list[dict] = []
    common_spec = {"dim": args.dim, "devices": args.devices, "steps_per_call": args.steps_per_call, "optimizer": "sgd",
                   "lr": args.lr}
    if "large" in parts:
        large = run_child({**common_spec, "kind": "large", "vocab": args.large_vocab, "tokens": args.large_tokens,
                           "steps": args.large_steps})
        print(json.dumps({k: v for k, v in large.items() if k not in ("records", "config")}), flush=True)
    if "compare" in parts:
        compare = run_child({**common_spec, "kind": "compare", "vocab": args.compare_vocab,
                             "tokens": args.compare_tokens, "steps": args.compare_steps})
        print(json.dumps({k: v for k, v in compare.items() if k not in ("records", "config", "loss_per_example")}),
              flush=True)
    fetches = []
    if "fetch" in parts:
        for fetch in ("psum_scatter", "all_to_all", "psum"):
            fetches.append(run_child({**common_spec, "kind": "large", "vocab": args.compare_vocab, "fetch": fetch,
                                      "tokens": args.compare_tokens, "steps": args.compare_steps}))
            print(json.dumps({k: fetches[-1].get(k) for k in ("fetch", "words_per_second", "error")}), flush=True)
    if "bundled" in parts:
        for shard, fetch, sync_every in ((False, None, 8), (False, None, 1), (True, "psum_scatter", 1),
                                         (True, "all_to_all", 1), (True, "psum", 1)):
            bundled.append(run_child({"kind": "bundled", "devices": 2, "shard": shard, "fetch": fetch,
                                      "sync_every": sync_every}))
            print(json.dumps(bundled[-1]), flush=True)
    markdown = report(large, compare, bundled)
    if fetches:
        markdown += "\n".join(["", f"## The collective that delivers the fetched rows: V = {args.compare_vocab:,}, dim "
                               f"{args.dim}, {args.devices} devices, {args.compare_steps} steps", "",
                               common.markdown_table(["fetch", "words/s (steady)"],
                                                     [[f.get("fetch"), round(f["words_per_second"]) if "error" not in f
                                                       else f["error"][:80]] for f in fetches]), ""])
    print(markdown)
    if args.out:
        record = {"args": vars(args), "large": large, "compare": compare, "bundled": bundled, "fetch": fetches,
                  "machine": common.machine(), "command": common.command_line()}
        common.write_outputs(args.out, record, markdown + "\n" + common.machine_markdown(record["machine"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
