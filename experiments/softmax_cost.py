"""The cost of one training step against vocabulary size: full softmax, negative sampling and
hierarchical softmax.

The full softmax normalises over every word, so each prediction touches all V output vectors:
time per step grows linearly with V. Negative sampling touches the true context and k noise words,
whatever V is: constant. Hierarchical softmax touches the inner nodes on the context word's path
in a Huffman tree, about log2 V of them (fewer for frequent words): logarithmic.

    python experiments/softmax_cost.py
    python experiments/softmax_cost.py --vocab-sizes 1000,10000,100000 --repeats 15

For each V it builds a skip-gram model (dim N, batch of B targets with 2w contexts each, word
frequencies following Zipf's law), compiles one training step of each objective (the library's
sparse step, `sg_jax.step.row_step`), and times it: the median of several calls after the
compiled warm-up. Prints a table and the log-log slope of time against V for each objective, and
writes OUT/softmax_cost.csv, OUT/softmax_cost.md and OUT/softmax_cost.png.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from sg_jax.atomic import atomic_write_csv, atomic_write_text
from sg_jax.errors import SgJaxError
from sg_jax.plots import pyplot, save_figure

OBJECTIVES = ("softmax", "ns", "hs")
NAMES = {"softmax": "full softmax", "ns": "negative sampling", "hs": "hierarchical softmax"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab-sizes", default="1000,3000,10000,30000,100000", help="comma-separated V values")
    p.add_argument("--objectives", default=",".join(OBJECTIVES), help="comma-separated: softmax, ns, hs")
    p.add_argument("--batch", type=int, default=256, help="targets per step (default 256)")
    p.add_argument("--dim", type=int, default=100, help="embedding dimension N (default 100)")
    p.add_argument("--window", type=int, default=2, help="window w: 2w contexts per target (default 2)")
    p.add_argument("--negative", type=int, default=5, help="noise words per pair for ns (default 5)")
    p.add_argument("--repeats", type=int, default=7,
                   help="timed steps per point, at least (fast steps repeat until --min-seconds); the median is reported")
    p.add_argument("--min-seconds", type=float, default=0.5, help="time each point for at least this long (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/softmax_cost", help="output directory")
    return p.parse_args(argv)


def zipf_counts(V: int, exponent: float = 1.0, total: float = 1e8) -> np.ndarray:
    """Word counts following Zipf's law, most frequent first (every count >= 1)."""
    ranks = np.arange(1, V + 1, dtype=np.float64)
    weights = ranks ** -exponent
    return np.maximum(1, np.round(total * weights / weights.sum())).astype(np.int64)


def time_step(objective: str, V: int, *, batch: int, dim: int, window: int, negative: int, repeats: int,
              seed: int, min_seconds: float = 0.5) -> dict:
    """Compile one training step for (objective, V) and time it; returns a table row."""
    import jax
    import jax.numpy as jnp

    from sg_jax.config import Config
    from sg_jax.objectives import Batch, get_objective, get_spec
    from sg_jax.data.layouts.padded import PADDED
    from sg_jax.step import init_state, make_optimizer, row_step

    config = Config(objective=objective, dim=dim, window=window, negative=negative, share_negatives="none",
                    batch_size=batch, seed=seed).validate()
    counts = zipf_counts(V)
    obj = get_objective("sg", objective, negative=negative, share="none")
    optimizer = make_optimizer(config, total_steps=10_000)
    tables = get_spec(objective).tables(counts, config)
    state = init_state(config, V, optimizer)

    rng = np.random.default_rng(seed)
    p = counts / counts.sum()
    C = 2 * window
    batch_data = Batch(jnp.asarray(rng.choice(V, size=batch, p=p), jnp.int32),
                       jnp.asarray(rng.choice(V, size=(batch, C), p=p), jnp.int32),
                       jnp.ones((batch, C), bool))

    @functools.partial(jax.jit, donate_argnums=(0,))
    def step(state, batch_data, key, tables):
        aux = obj.sample(key, batch_data, tables)
        return row_step(state, obj, PADDED, optimizer, batch_data, aux, tables)

    key = jax.random.PRNGKey(seed)
    t0 = time.perf_counter()
    state, loss = step(state, batch_data, jax.random.fold_in(key, 0), tables)
    loss.block_until_ready()
    first = time.perf_counter() - t0
    state, loss = step(state, batch_data, jax.random.fold_in(key, 1), tables)  # one more warm-up
    loss.block_until_ready()
    times = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < 500):
        t0 = time.perf_counter()
        state, loss = step(state, batch_data, jax.random.fold_in(key, 2 + len(times)), tables)
        loss.block_until_ready()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    pairs = batch * C
    padded = None
    if objective == "softmax":
        rows_per_pair = V                       # every output vector, once per target
    elif objective == "ns":
        rows_per_pair = negative + 1
    else:
        mask = np.asarray(tables.mask)
        rows_per_pair = float((mask.sum(axis=1) * p).sum())  # expected Huffman path length
        padded = mask.shape[1]  # the step computes the padded path (the longest code), masked
    return {"objective": objective, "V": V, "ms_per_step": 1e3 * median, "us_per_pair": 1e6 * median / pairs,
            "min_ms": 1e3 * min(times), "max_ms": 1e3 * max(times), "timed_steps": len(times),
            "first_call_s": first, "output_rows_per_prediction": rows_per_pair, "padded_path_length": padded,
            "loss_per_pair": float(loss) / pairs}


def slope(xs, ys) -> float:
    """Least-squares slope of log y against log x (1: linear, 0: constant)."""
    if len(xs) < 2:
        return math.nan
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def table_text(rows, vocab_sizes, objectives) -> str:
    at = {(r["objective"], r["V"]): r for r in rows}
    head = f"{'V':>8}  " + "  ".join(f"{NAMES[o]:>22}" for o in objectives)
    lines = ["time per step in ms (median), with output vectors touched per prediction (hs: mean Huffman path)",
             head, "-" * len(head)]
    for V in vocab_sizes:
        cells = []
        for o in objectives:
            r = at[o, V]
            cells.append(f"{r['ms_per_step']:>9.2f} ms ({r['output_rows_per_prediction']:>7,.1f})")
        lines.append(f"{V:>8,}  " + "  ".join(f"{c:>22}" for c in cells))
    lines.append("")
    ratio = vocab_sizes[-1] / vocab_sizes[0]
    for o in objectives:
        series = [at[o, V]["ms_per_step"] for V in vocab_sizes]
        lines.append(f"{NAMES[o]:>22}: log-log slope {slope(vocab_sizes, series):5.2f}; "
                     f"x{series[-1] / series[0]:.1f} from V={vocab_sizes[0]:,} to V={vocab_sizes[-1]:,} "
                     f"(V grew x{ratio:,.0f})")
    return "\n".join(lines)


def table_markdown(rows, vocab_sizes, objectives) -> str:
    at = {(r["objective"], r["V"]): r for r in rows}
    out = ["| V | " + " | ".join(f"{NAMES[o]} (ms/step)" for o in objectives) + " |",
           "|---:|" + "---:|" * len(objectives)]
    for V in vocab_sizes:
        out.append(f"| {V:,} | " + " | ".join(f"{at[o, V]['ms_per_step']:.2f}" for o in objectives) + " |")
    out.append("| log-log slope | " + " | ".join(
        f"{slope(vocab_sizes, [at[o, V]['ms_per_step'] for V in vocab_sizes]):.2f}" for o in objectives) + " |")
    return "\n".join(out) + "\n"


def plot(path: Path, rows, vocab_sizes, objectives, args) -> None:
    plt = pyplot()
    at = {(r["objective"], r["V"]): r for r in rows}
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    V = np.asarray(vocab_sizes, np.float64)
    for o, marker in zip(objectives, "osD"):
        ms = np.array([at[o, v]["ms_per_step"] for v in vocab_sizes])
        ax.loglog(V, ms, marker=marker, label=f"{NAMES[o]} (slope {slope(V, ms):.2f})")
    # reference shapes through the first point of each objective
    if "softmax" in objectives:
        first = at["softmax", vocab_sizes[0]]["ms_per_step"]
        ax.loglog(V, first * V / V[0], "k:", lw=1, label="∝ V")
    if "hs" in objectives:
        first = at["hs", vocab_sizes[0]]["ms_per_step"]
        ax.loglog(V, first * np.log2(V) / np.log2(V[0]), "k--", lw=1, label="∝ log V")
    ax.set_xlabel("vocabulary size V")
    ax.set_ylabel("time per step (ms, median)")
    ax.set_title(f"one skip-gram step: {args.batch} targets x {2 * args.window} contexts, N = {args.dim}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        vocab_sizes = sorted({int(x) for x in args.vocab_sizes.split(",") if x.strip()})
        objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
        unknown = [o for o in objectives if o not in OBJECTIVES]
        if unknown or not vocab_sizes or min(vocab_sizes) < 2 or args.repeats < 1:
            raise ValueError(f"need objectives among {', '.join(OBJECTIVES)}, vocabulary sizes >= 2 and "
                             f"repeats >= 1 (got {args.objectives!r}, {args.vocab_sizes!r}, {args.repeats})")
        import jax

        print(f"device: {jax.devices()[0].platform} ({jax.devices()[0].device_kind}); batch {args.batch} targets "
              f"x {2 * args.window} contexts = {args.batch * 2 * args.window} pairs per step, N = {args.dim}, "
              f"k = {args.negative}")
        rows = []
        for V in vocab_sizes:
            for o in objectives:
                row = time_step(o, V, batch=args.batch, dim=args.dim, window=args.window, negative=args.negative,
                                repeats=args.repeats, seed=args.seed, min_seconds=args.min_seconds)
                rows.append(row)
                print(f"  V={V:>7,} {NAMES[o]:>22}: {row['ms_per_step']:8.2f} ms/step "
                      f"({row['us_per_pair']:.2f} us per pair; {row['timed_steps']} timed steps; compile + first "
                      f"call {row['first_call_s']:.1f} s"
                      + (f"; paths padded to {row['padded_path_length']} nodes)" if row["padded_path_length"] else ")"),
                      flush=True)
        print()
        print(table_text(rows, vocab_sizes, objectives))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(out / "softmax_cost.csv", rows)
        atomic_write_text(out / "softmax_cost.md", table_markdown(rows, vocab_sizes, objectives))
        plot(out / "softmax_cost.png", rows, vocab_sizes, objectives, args)
        print(f"\nwrote {out / 'softmax_cost.csv'}, {out / 'softmax_cost.md'} and {out / 'softmax_cost.png'}")
    except (SgJaxError, ValueError) as e:
        print(f"softmax_cost: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
