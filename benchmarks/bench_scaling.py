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
by the steps in a call. For reference it also times one dense in-place pass over a table
(`w + 1.0`, donated), the least a dense update would cost.

All configurations of a mode are compiled first and their timed calls alternate, so that load from
other processes on the machine falls on all of them alike.

A larger Zipf vocabulary also means a step touches more *distinct* rows spread over a table that
no longer fits in the CPU caches, so some growth is expected from the memory hierarchy alone. The
control separates the two: the smallest vocabulary's corpus (the very same rows touched) is
trained with tables of the largest size; if a step's cost depended on the table size, the
control would show it.

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


class Runner:
    """One (mode, vocabulary, corpus) set up exactly as `sg_jax.train.train` sets up an epoch, and
    compiled by one warm-up call; `call()` times one further call of `steps_per_call` steps."""

    def __init__(self, mode: str, vocab, corpus, args):
        import jax
        import numpy as np

        import sg_jax.keys as keys
        from sg_jax.data import epoch as pipeline
        from sg_jax.train import Config, init_state, make_plan

        objective, share = MODES[mode]
        self.mode, self.V = mode, len(vocab)
        config = Config(objective=objective, share_negatives=share, dim=args.dim, window=args.window,
                        negative=args.negative, sample=args.sample, min_count=1, epochs=1, lr=args.lr,
                        batch_size=args.batch, steps_per_call=args.steps, seed=args.seed)
        t = time.perf_counter()
        self.config = config
        self.plan = plan = make_plan(config, vocab.counts, corpus.ids, corpus.offsets)
        self.plan_s = time.perf_counter() - t
        self.state = init_state(config, self.V, plan.optimizer)
        start, end = plan.chunks[0]
        dev = pipeline.to_device(corpus.ids, corpus.offsets, start, end)
        layout = plan.resolved.layout
        key = keys.chunk_key(self.state.key, 0)
        self.data = pipeline.prepare_epoch(keys.data_key(key), dev, plan.keep_prob, config.shuffle,
                                           layout.epoch_unit(config, plan.batch_size))
        self.epoch_key = keys.steps_key(key)
        self.steps = -(-int(self.data.n) // plan.batch_size)
        self.S = config.steps_per_call
        if self.steps < (args.calls + 1) * self.S:
            raise SystemExit(f"{mode} at V={self.V}: only {self.steps} steps in the epoch, need "
                             f"{(args.calls + 1) * self.S}; raise --tokens or lower --calls/--steps")

        def touched(data, tables, key):  # the index vectors one step gathers and scatters
            batch, aux = layout.make(config, plan.obj, data, tables, 0, key, key, batch_size=plan.batch_size,
                                     slots=None, window=config.window)
            return layout.scoring(plan.obj, batch, aux, tables)[:2]

        in_idx, out_idx = jax.eval_shape(touched, self.data, plan.tables, self.epoch_key)
        self.rows_per_step = int(np.prod(in_idx.shape)) + int(np.prod(out_idx.shape))
        self.times, self.examples, self.finite, self.next_call = [], [], True, 0
        self.first_s = self._call()[0]
        self.times, self.examples = [], []

    def _call(self):
        import jax
        import numpy as np

        t = time.perf_counter()
        self.state, stats = self.plan.run_steps(self.state, self.data, self.plan.tables, self.epoch_key,
                                                self.next_call * self.S, self.steps)
        losses, examples = stats.losses, stats.examples
        jax.block_until_ready((self.state, losses))
        seconds = time.perf_counter() - t
        self.next_call += 1
        self.finite = self.finite and bool(np.isfinite(np.asarray(losses)).all())
        return seconds, float(np.asarray(examples).sum())

    def call(self) -> None:
        seconds, examples = self._call()
        self.times.append(seconds)
        self.examples.append(examples)

    def result(self) -> dict:
        S = self.S
        step_ms = 1e3 * statistics.median(self.times) / S
        pairs_per_step = statistics.mean(self.examples) / S
        config = self.config
        return {"mode": self.mode, "V": self.V, "out_rows": int(self.state.params.w_out.shape[0]),
                "sg_form": getattr(config, "resolved_sg_form", "target"),
                "dup_cap": getattr(config, "resolved_dup_cap", None),
                "batch": self.plan.batch_size, "rows_per_step": self.rows_per_step,
                "step_ms": step_ms, "step_ms_min": 1e3 * min(self.times) / S, "step_ms_max": 1e3 * max(self.times) / S,
                "pairs_per_step": pairs_per_step, "pairs_per_s": pairs_per_step / (step_ms / 1e3),
                "first_call_s": self.first_s, "plan_s": self.plan_s, "finite": self.finite,
                "kept_tokens": int(self.data.n), "steps_in_epoch": self.steps}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--vocab-sizes", default="10000,100000,1000000")
    p.add_argument("--modes", default="ns-none,ns-target,hs", help=f"comma-separated from {', '.join(MODES)}")
    p.add_argument("--tokens", type=int, default=4_000_000, help="synthetic corpus tokens")
    p.add_argument("--batch", type=int, default=1024, help="targets per step")
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--steps", type=int, default=32, help="steps per jitted call")
    p.add_argument("--calls", type=int, default=12, help="timed calls (after one warm-up call)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-control", action="store_true",
                   help="skip the control run (smallest V's corpus with the largest V's tables)")
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    args = p.parse_args(argv)
    sizes = [int(v) for v in args.vocab_sizes.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"unknown mode(s) {', '.join(bad)}; choose from {', '.join(MODES)}")

    import numpy as np

    from sg_jax.synthetic import synthetic_vocab, zipf_corpus

    corpora = {}
    for V in sizes:
        t = time.perf_counter()
        corpora[V] = zipf_corpus(args.tokens, V, seed=args.seed)
        print(f"V={V:,}: corpus of {args.tokens:,} tokens, {int((corpora[V][0].counts > 0).sum()):,} distinct "
              f"words ({time.perf_counter() - t:.1f} s)", flush=True)
    dense = {V: dense_pass_ms(V, args.dim) for V in sizes}
    small, large = min(sizes), max(sizes)
    results, control = [], []
    for mode in modes:
        # every configuration of this mode is set up and compiled first, then the timed calls go
        # round-robin over them, so that load from other processes hits all of them alike
        runners = [Runner(mode, *corpora[V], args) for V in sizes]
        if len(sizes) > 1 and not args.no_control and mode != "hs":
            # the control: the smallest V's corpus (so the very same rows are touched) with tables of
            # the largest size; the extra words never occur (count 0: never kept, never drawn as noise)
            vocab, corpus = corpora[small]
            big = synthetic_vocab(np.concatenate([vocab.counts, np.zeros(large - small, np.int64)]))
            runners.append(Runner(mode, big, corpus, args))
        for _ in range(args.calls):
            for r in runners:
                r.call()
        for i, r in enumerate(runners):
            res = r.result()
            res["loadavg"] = os.getloadavg()[0]
            is_control = i == len(sizes)
            (control if is_control else results).append(res)
            what = f"{res['V']:,}-row tables, V={small:,} corpus" if is_control else f"V={res['V']:,}"
            print(f"  {mode:10s} {what:32s} step {res['step_ms']:7.2f} ms (min {res['step_ms_min']:.2f}, "
                  f"max {res['step_ms_max']:.2f}), {res['rows_per_step']:,} rows/step, "
                  f"{res['pairs_per_s'] / 1e6:.2f}M pairs/s, first call {res['first_call_s']:.1f} s, "
                  f"plan {res['plan_s']:.1f} s{'' if res['finite'] else ', LOSS NOT FINITE'}", flush=True)
        del runners

    second = sorted(sizes)[-2] if len(sizes) > 2 else None
    header = ["mode", *[f"V={V:,} ms/step" for V in sizes], f"ratio {large:,}/{small:,}",
              *([f"ratio {large:,}/{second:,}"] if second else []),
              *[f"V={V:,} best ms/step" for V in sizes], "ratio of best", "pairs/step",
              *[f"V={V:,} rows/step" for V in sizes],
              *[f"V={V:,} Mpairs/s" for V in sizes]]
    rows, ratios = [], {}
    for mode in modes:
        by_v = {r["V"]: r for r in results if r["mode"] == mode}
        ratio = by_v[large]["step_ms"] / by_v[small]["step_ms"]
        best = by_v[large]["step_ms_min"] / by_v[small]["step_ms_min"]
        ratios[mode] = {"median": ratio, "best": best}
        extra = []
        if second:
            ratios[mode]["median_vs_second"] = by_v[large]["step_ms"] / by_v[second]["step_ms"]
            extra = [ratios[mode]["median_vs_second"]]
        rows.append([mode, *[by_v[V]["step_ms"] for V in sizes], ratio, *extra, *[by_v[V]["step_ms_min"] for V in sizes],
                     best, by_v[small]["pairs_per_step"], *[by_v[V]["rows_per_step"] for V in sizes],
                     *[by_v[V]["pairs_per_s"] / 1e6 for V in sizes]])
    diverged = sorted({f"{r['mode']} (V={r['V']:,})" for r in results if not r["finite"]})
    dense_row = ["(dense in-place pass over one table)", *[dense[V] for V in sizes], dense[large] / dense[small],
                 *([dense[large] / dense[second]] if second else []),
                 *[None for _ in sizes], None, None, *[None for _ in sizes], *[None for _ in sizes]]
    control_rows = []
    for r in control:
        base = next(x for x in results if x["mode"] == r["mode"] and x["V"] == small)
        control_rows.append([r["mode"], base["step_ms"], r["step_ms"], r["step_ms"] / base["step_ms"],
                             base["step_ms_min"], r["step_ms_min"], r["step_ms_min"] / base["step_ms_min"]])
    record = {"command": common.command_line(), "args": vars(args), "machine": common.machine(),
              "results": results, "ratios": ratios, "dense_pass_ms": dense, "control": control}
    text = "\n".join([
        f"Command: `{record['command']}`", "",
        f"Batch {args.batch} targets, window {args.window} (dynamic), k {args.negative}, dim {args.dim}, "
        f"sample {args.sample}; synthetic Zipf corpus of {args.tokens:,} tokens; median of {args.calls} calls of "
        f"{args.steps} steps each (and the best call), compile excluded; the calls of one mode alternate "
        f"between the vocabulary sizes. "
        f"Highest 1-minute load average seen: {max(r['loadavg'] for r in results):.1f} "
        f"on {os.cpu_count()} logical CPUs.", "",
        common.markdown_table(header, rows + [dense_row]), "",
        "Skip-gram form and duplicate-row cap as the library resolves them: " + "; ".join(
            f"{m}: {r['sg_form']} form, cap {r['dup_cap']}" for m, r in
            ((m, next(x for x in results if x["mode"] == m)) for m in modes)) + ".", "",
        "Target: ratio <= 1.2 (a dense update would follow the dense-pass row). rows/step: table rows a step "
        "gathers and scatters back (w_in and w_out indices, padding slots included).", "",
        *([f"Control: the V={small:,} corpus (the same rows touched) trained with {large:,}-row tables; "
           "if the step cost depended on the table size rather than on the rows touched, this would show it.", "",
           common.markdown_table(["mode", f"{small:,}-row tables ms/step", f"{large:,}-row tables ms/step", "ratio",
                                  "best, small", "best, large", "ratio of best"], control_rows), ""]
          if control_rows else []),
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
