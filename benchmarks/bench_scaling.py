"""Sparse-update check: the cost of a training step must not grow with the vocabulary.

A step of the sampled objectives touches O(batch x (window + k) ) rows (negative sampling) or
O(batch x window x log V) rows (hierarchical softmax), never the whole table. If an update were
dense (or XLA copied a table instead of updating it in place), a step at V = 1M would cost at
least one pass over 2 x 400 MB and the step time would grow ~100x from V = 10K.

For each vocabulary size and mode this script builds the trainer exactly as `sg_jax.train.train`
does (`make_plan`, `init_state`, `pipeline.to_device`, `pipeline.prepare_epoch`), on a synthetic
Zipf corpus (`sg_jax.synthetic.zipf_corpus`, exponent 1), compiles `plan.run_steps` with one
warm-up call, then times `--calls` further calls of `steps_per_call` steps each (all real steps
of the same epoch) with `jax.block_until_ready`. The step time is the median call time divided
by the steps in a call. For reference it also times one dense pass over a table (`w + 1.0`),
the least a dense update would cost.

    python benchmarks/bench_scaling.py                       # V = 10K and 1M, ns none/target, hs
    python benchmarks/bench_scaling.py --vocab-sizes 10000,100000,1000000 --modes ns-target
    python benchmarks/bench_scaling.py --out benchmarks/results/scaling
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import common

MODES = {"ns-none": ("ns", "none"), "ns-target": ("ns", "target"), "ns-batch": ("ns", "batch"), "hs": ("hs", "none")}


def dense_pass_ms(V: int, dim: int, repeats: int = 5) -> float:
    """Median time of one in-place pass over a donated [V, dim] float32 table (w += 1): the least
    a dense update of one table would cost per step."""
    import jax
    import jax.numpy as jnp

    w = jnp.zeros((V, dim), jnp.float32)
    f = jax.jit(lambda w: w + 1.0, donate_argnums=0)
    w = jax.block_until_ready(f(w))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        w = jax.block_until_ready(f(w))
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def measure(mode: str, vocab, corpus, args) -> dict:
    import jax
    import numpy as np

    from sg_jax import pipeline
    from sg_jax.train import Config, init_state, make_plan

    objective, share = MODES[mode]
    config = Config(objective=objective, share_negatives=share, dim=args.dim, window=args.window,
                    negative=args.negative, sample=args.sample, min_count=1, epochs=1, lr=args.lr,
                    batch_size=args.batch, steps_per_call=args.steps, seed=args.seed)
    t = time.perf_counter()
    plan = make_plan(config, vocab.counts, corpus.ids, corpus.offsets)
    plan_s = time.perf_counter() - t
    V = len(vocab)
    state = init_state(config, V, plan.optimizer)
    start, end = plan.chunks[0]
    dev = pipeline.to_device(corpus.ids, corpus.offsets, start, end)
    key = jax.random.fold_in(state.key, 0)
    data = pipeline.prepare_epoch(key, dev, plan.keep_prob, config.shuffle)
    epoch_key = jax.random.fold_in(key, 1)
    steps = -(-int(data.n) // plan.batch_size)
    S = config.steps_per_call
    if steps < (args.calls + 1) * S:
        raise SystemExit(f"{mode} at V={V}: only {steps} steps in the epoch, need {(args.calls + 1) * S}; "
                         "raise --tokens or lower --calls/--steps")
    t = time.perf_counter()
    state, losses, counts = plan.run_steps(state, data, plan.tables, epoch_key, 0, steps)
    jax.block_until_ready((state, losses))
    first_s = time.perf_counter() - t
    times, examples, finite = [], [], bool(np.isfinite(np.asarray(losses)).all())
    for i in range(1, args.calls + 1):
        t = time.perf_counter()
        state, losses, counts = plan.run_steps(state, data, plan.tables, epoch_key, i * S, steps)
        jax.block_until_ready((state, losses))
        times.append(time.perf_counter() - t)
        examples.append(float(np.asarray(counts).sum()))
        finite = finite and bool(np.isfinite(np.asarray(losses)).all())
    step_ms = 1e3 * statistics.median(times) / S
    pairs_per_step = statistics.mean(examples) / S
    return {"mode": mode, "V": V, "out_rows": int(state.params.w_out.shape[0]), "batch": plan.batch_size,
            "step_ms": step_ms, "step_ms_min": 1e3 * min(times) / S, "step_ms_max": 1e3 * max(times) / S,
            "pairs_per_step": pairs_per_step, "pairs_per_s": pairs_per_step / (step_ms / 1e3),
            "first_call_s": first_s, "plan_s": plan_s, "finite": finite, "kept_tokens": int(data.n), "steps_in_epoch": steps}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--vocab-sizes", default="10000,1000000")
    p.add_argument("--modes", default="ns-none,ns-target,hs", help=f"comma-separated from {', '.join(MODES)}")
    p.add_argument("--tokens", type=int, default=4_000_000, help="synthetic corpus tokens")
    p.add_argument("--batch", type=int, default=1024, help="targets per step")
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--steps", type=int, default=32, help="steps per jitted call")
    p.add_argument("--calls", type=int, default=8, help="timed calls (after one warm-up call)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    args = p.parse_args(argv)
    sizes = [int(v) for v in args.vocab_sizes.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"unknown mode(s) {', '.join(bad)}; choose from {', '.join(MODES)}")

    from sg_jax.synthetic import zipf_corpus

    results, dense = [], {}
    for V in sizes:
        t = time.perf_counter()
        vocab, corpus = zipf_corpus(args.tokens, V, seed=args.seed)
        print(f"V={V:,}: corpus of {corpus.n_tokens:,} tokens, {int((vocab.counts > 0).sum()):,} distinct words "
              f"({time.perf_counter() - t:.1f} s)", flush=True)
        dense[V] = dense_pass_ms(V, args.dim)
        for mode in modes:
            r = measure(mode, vocab, corpus, args)
            r["loadavg"] = os.getloadavg()[0]
            results.append(r)
            print(f"  {mode:10s} step {r['step_ms']:7.2f} ms (min {r['step_ms_min']:.2f}, max {r['step_ms_max']:.2f}), "
                  f"{r['pairs_per_s'] / 1e6:.2f}M pairs/s, first call {r['first_call_s']:.1f} s, "
                  f"plan {r['plan_s']:.1f} s{'' if r['finite'] else ', LOSS NOT FINITE'}", flush=True)
        del vocab, corpus

    small, large = min(sizes), max(sizes)
    header = ["mode", *[f"V={V:,} ms/step" for V in sizes], f"ratio {large:,}/{small:,}",
              *[f"V={V:,} best ms/step" for V in sizes], "ratio of best", "pairs/step",
              *[f"V={V:,} Mpairs/s" for V in sizes]]
    rows, ratios = [], {}
    for mode in modes:
        by_v = {r["V"]: r for r in results if r["mode"] == mode}
        ratio = by_v[large]["step_ms"] / by_v[small]["step_ms"]
        best = by_v[large]["step_ms_min"] / by_v[small]["step_ms_min"]
        ratios[mode] = {"median": ratio, "best": best}
        rows.append([mode, *[by_v[V]["step_ms"] for V in sizes], ratio, *[by_v[V]["step_ms_min"] for V in sizes],
                     best, by_v[small]["pairs_per_step"], *[by_v[V]["pairs_per_s"] / 1e6 for V in sizes]])
    diverged = sorted({f"{r['mode']} (V={r['V']:,})" for r in results if not r["finite"]})
    dense_row = ["(dense in-place pass over one table)", *[dense[V] for V in sizes], dense[large] / dense[small],
                 *[None for _ in sizes], None, None, *[None for _ in sizes]]
    record = {"command": common.command_line(), "args": vars(args), "machine": common.machine(),
              "results": results, "ratios": ratios, "dense_pass_ms": dense}
    text = "\n".join([
        f"Command: `{record['command']}`", "",
        f"Batch {args.batch} targets, window {args.window} (dynamic), k {args.negative}, dim {args.dim}, "
        f"sample {args.sample}; synthetic Zipf corpus of {args.tokens:,} tokens; median of {args.calls} calls of "
        f"{args.steps} steps each (and the best call), compile excluded. "
        f"Highest 1-minute load average seen: {max(r['loadavg'] for r in results):.1f} "
        f"on {os.cpu_count()} logical CPUs.", "",
        common.markdown_table(header, rows + [dense_row]), "",
        "Target: ratio <= 1.2 (a dense update would follow the dense-pass row).", "",
        *([f"The loss became non-finite during timing in: {', '.join(diverged)} (at lr {args.lr}); "
           "the step's arithmetic and memory traffic do not depend on the values, so the timing stands.", ""]
          if diverged else []),
        "Machine:", "", common.machine_markdown(record["machine"])])
    print()
    print(text)
    if args.out:
        paths = common.write_outputs(args.out, record, text)
        print(f"\nwrote {paths[0]} and {paths[1]}")
    worst = max(r["median"] for r in ratios.values()) if ratios else math.nan
    print(f"\nworst ratio (medians) {worst:.2f}: {'within' if worst <= 1.2 else 'OVER'} the 1.2 target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
