"""sg_jax against gensim on the same corpus, hyperparameters and scoring.

Each row trains one model in a fresh subprocess (so peak memory and jit compilation belong to that
row alone) and reports:

* train s          wall time of training: sg_jax `train()`'s loop (`TrainResult.seconds`: data
                   to the device, subsampling, every jitted call, jit compilation included);
                   gensim `Word2Vec.train()`. Corpus reading, the vocabulary and the sampling
                   tables (sg_jax's plan, gensim's `build_vocab`) are excluded and reported as
                   "setup s".
* raw words/s      corpus tokens (as read by the shared tokenizer, before min_count) x epochs /
                   train s: the same numerator for both trainers.
* eff. words/s     in-vocabulary tokens kept by subsampling, summed over epochs / train s.
                   gensim: the first value `train()` returns; sg_jax: the expected kept count
                   epochs x sum_w count_w x keep_probability(count_w) (word2vec's formula; the
                   realised count differs by well under 0.1%).
* first call s     sg_jax only: how much longer the first jitted call took than a typical call
                   of the first epoch, i.e. about the jit compile time (included in train s).
* peak MiB         the process's peak resident memory during training (VmHWM, reset just before
                   training starts), and the resident memory before training ("base MiB").
* WS353, analogy   WordSim-353 Spearman and Google-analogy accuracy (3CosAdd) scored by
                   sg_jax.evaluation on both models' input vectors, same restrict_vocab.

gensim reads exactly the token lists sg_jax reads (`sg_jax.data.corpus.iter_sentences`, lowercased),
so the vocabularies agree (checked: the report lists both sizes).

    python benchmarks/bench_gensim.py                       # all rows, bundled Brown corpus
    python benchmarks/bench_gensim.py --rows sg_jax-sg-ns-target,gensim-sg-ns --repeats 3
    python benchmarks/bench_gensim.py --out benchmarks/results/gensim_brown
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

# row name -> (trainer, arch, objective, share_negatives, other Config fields); gensim rows have no
# sharing option. sg_jax rows train on one device unless they say otherwise ("devices": None is
# every device: every core, made a JAX device before JAX starts).
ROWS = {
    "sg_jax-sg-ns-none": ("sg_jax", "sg", "ns", "none", {"window_layout": "padded"}),
    "sg_jax-sg-ns-target": ("sg_jax", "sg", "ns", "target", {"window_layout": "padded"}),
    "sg_jax-sg-ns-target-all-devices": ("sg_jax", "sg", "ns", "target", {"window_layout": "padded", "devices": None}),
    "sg_jax-sg-ns-target-span": ("sg_jax", "sg", "ns", "target", {"window_layout": "span"}),
    "sg_jax-sg-ns-target-packed": ("sg_jax", "sg", "ns", "target", {"window_layout": "packed"}),
    "sg_jax-sg-ns-target-packed-all-devices": ("sg_jax", "sg", "ns", "target",
                                               {"window_layout": "packed", "devices": None}),
    "sg_jax-sg-ns-batch": ("sg_jax", "sg", "ns", "batch", {"window_layout": "padded"}),
    "sg_jax-sg-ns-pool-span": ("sg_jax", "sg", "ns", "pool", {"window_layout": "span"}),
    # the default step without its trust region (the step before it): what the rule costs
    "sg_jax-sg-ns-pool-span-no-trust": ("sg_jax", "sg", "ns", "pool", {"window_layout": "span", "trust_region": 0.0}),
    "sg_jax-sg-ns-pool-span-all-devices": ("sg_jax", "sg", "ns", "pool", {"window_layout": "span", "devices": None}),
    # the default step with W drawn as the word2vec C tool draws it (half gensim 4's width; the default before)
    "sg_jax-sg-ns-pool-span-init-word2vec": ("sg_jax", "sg", "ns", "pool", {"window_layout": "span",
                                                                           "init": "word2vec"}),
    "gensim-sg-ns": ("gensim", "sg", "ns", None, {}),
    "sg_jax-cbow-ns": ("sg_jax", "cbow", "ns", "none", {}),
    "sg_jax-cbow-ns-mean": ("sg_jax", "cbow", "ns", "none", {"cbow_update": "mean"}),  # the default before
    # CBOW's default before it trained on spans (padded slots, k noise words per target), and now
    "sg_jax-cbow-ns-target": ("sg_jax", "cbow", "ns", "target", {"window_layout": "padded"}),
    "sg_jax-cbow-ns-pool-span": ("sg_jax", "cbow", "ns", "pool", {"window_layout": "span"}),
    "gensim-cbow-ns": ("gensim", "cbow", "ns", None, {}),
    "sg_jax-sg-hs": ("sg_jax", "sg", "hs", None, {}),
    "gensim-sg-hs": ("gensim", "sg", "hs", None, {}),
}


def peer_of(row: str) -> str | None:
    trainer, arch, objective, _, _ = ROWS[row]
    if trainer == "gensim":
        return None
    return next((r for r, (t, a, o, _, _) in ROWS.items() if t == "gensim" and a == arch and o == objective), None)


# ------------------------------------------------------------------------------------ one row


def train_sg_jax(spec, args) -> dict:
    from sg_jax.data.corpus import load_corpus
    from sg_jax.errors import DivergenceError
    from sg_jax.config import Config
    from sg_jax.train import train
    from sg_jax.windows import keep_probability
    import numpy as np

    from sg_jax import compile_cache

    compile_cache.enable()  # as a run does (runs.run_training): the directory comes from the environment
    _, arch, objective, share, extra = spec
    t = time.perf_counter()
    vocab, enc, stats = load_corpus(args.corpus, min_count=args.min_count)
    out = {"load_s": time.perf_counter() - t, "raw_tokens": stats.tokens, "vocab_size": len(vocab),
           "in_vocab_tokens": enc.n_tokens}
    config = Config(arch=arch, objective=objective, share_negatives=share or "none", dim=args.dim,
                    window=args.window, negative=args.negative, sample=args.sample, min_count=args.min_count,
                    epochs=args.epochs, lr=args.alpha, min_lr_ratio=args.min_alpha / args.alpha, seed=args.seed,
                    **{"devices": 1, **extra})
    out["config"] = {k: v for k, v in vars(config).items()}
    import jax

    out["config"]["devices_resolved"] = config.devices or jax.device_count()
    for name in ("resolved_sg_form", "resolved_dup_cap"):  # what "auto" settings resolve to
        if hasattr(config, name):
            out["config"][name] = getattr(config, name)
    out["base_rss"] = common.proc_status("VmRSS").get("VmRSS")
    common.reset_peak_rss()
    calls = []
    t, c = time.perf_counter(), time.process_time()
    try:
        r = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets,
                  on_call=lambda state, pos, record: calls.append(record))
    except DivergenceError as e:
        out.update(diverged=str(e), train_s=time.perf_counter() - t,
                   peak_rss=common.proc_status("VmHWM").get("VmHWM"), calls=len(calls))
        return out
    total = time.perf_counter() - t
    out["cpu_s"] = time.process_time() - c
    out["peak_rss"] = common.proc_status("VmHWM").get("VmHWM")
    out["train_s"] = r.seconds
    out["setup_s"] = total - r.seconds
    keep = keep_probability(vocab.counts, args.sample)
    out["effective_words"] = float(args.epochs * np.sum(vocab.counts * keep))
    out["examples"] = float(sum(h["examples"] for h in r.history))
    out["calls"] = len(r.history)
    out["first_call_extra_s"] = first_call_extra(r.history)
    out["final_loss"] = r.final_loss
    out["_vectors"] = (vocab.words, r.vectors())
    return out


def first_call_extra(history: list[dict]) -> float | None:
    """Duration of the first jitted call minus the median of the other calls of epoch 0."""
    if len(history) < 3:
        return None
    seconds = [h["seconds"] for h in history]
    durations = [seconds[0]] + [b - a for a, b in zip(seconds, seconds[1:])]
    epoch0 = [d for h, d in zip(history[1:], durations[1:]) if h["epoch"] <= 1.0]
    if not epoch0:
        return None
    epoch0.sort()
    return durations[0] - epoch0[len(epoch0) // 2]


def train_gensim(spec, args) -> dict:
    import gensim
    from gensim.models import Word2Vec
    from gensim.models import word2vec_inner

    from sg_jax.data.corpus import iter_sentences

    _, arch, objective, _, _ = spec
    t = time.perf_counter()
    sentences = list(iter_sentences(args.corpus))
    out = {"load_s": time.perf_counter() - t, "raw_tokens": sum(len(s) for s in sentences),
           "gensim": gensim.__version__, "gensim_fast_version": word2vec_inner.FAST_VERSION,
           "workers": args.workers}
    hs = objective == "hs"
    kwargs = dict(vector_size=args.dim, window=args.window, min_count=args.min_count, sample=args.sample,
                  sg=1 if arch == "sg" else 0, hs=1 if hs else 0, negative=0 if hs else args.negative,
                  alpha=args.alpha, min_alpha=args.min_alpha, epochs=args.epochs, workers=args.workers,
                  seed=args.seed)
    out["config"] = kwargs
    out["base_rss"] = common.proc_status("VmRSS").get("VmRSS")
    common.reset_peak_rss()
    t = time.perf_counter()
    model = Word2Vec(**kwargs)
    model.build_vocab(sentences)
    out["setup_s"] = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    effective, raw = model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    out["train_s"] = time.perf_counter() - t
    out["cpu_s"] = time.process_time() - c
    out["peak_rss"] = common.proc_status("VmHWM").get("VmHWM")
    out["effective_words"] = float(effective)
    out["gensim_raw_words"] = int(raw)
    out["vocab_size"] = len(model.wv.index_to_key)
    out["_vectors"] = (list(model.wv.index_to_key), model.wv.vectors)
    return out


def run_worker(row: str, args) -> dict:
    spec = ROWS[row]
    load_before = os.getloadavg()[0]
    out = (train_sg_jax if spec[0] == "sg_jax" else train_gensim)(spec, args)
    out["row"] = row
    out["loadavg"] = [load_before, os.getloadavg()[0]]  # 1-minute load average before / after
    vectors = out.pop("_vectors", None)
    if vectors is not None:
        from sg_jax.evaluation import evaluate_analogies, evaluate_similarity
        from sg_jax.embeddings import Embeddings

        emb = Embeddings(*vectors)
        t = time.perf_counter()
        sim = evaluate_similarity(emb)
        ana = evaluate_analogies(emb, restrict_vocab=args.restrict_vocab)
        out.update(ws353=sim.spearman, ws353_pairs=sim.n_pairs, analogy=ana.accuracy,
                   analogy_total=ana.total, analogy_skipped=ana.skipped, eval_s=time.perf_counter() - t)
    out["raw_words"] = out["raw_tokens"] * args.epochs
    if out.get("train_s"):
        out["raw_wps"] = out["raw_words"] / out["train_s"]
        if "effective_words" in out:
            out["eff_wps"] = out["effective_words"] / out["train_s"]
        if "examples" in out and spec[1] == "sg":
            out["pairs_ps"] = out["examples"] / out["train_s"]
    return out


# ------------------------------------------------------------------------------------ driver


def summarize(runs: list[dict]) -> dict:
    """Median over repeats of each number; the spread of train s and of the scores."""
    s = {"row": runs[0]["row"], "repeats": len(runs)}
    if any("diverged" in r for r in runs):
        s["diverged"] = next(r["diverged"] for r in runs if "diverged" in r)
    keys = ["train_s", "cpu_s", "setup_s", "raw_wps", "eff_wps", "pairs_ps", "first_call_extra_s", "peak_rss", "base_rss",
            "ws353", "analogy", "vocab_size", "raw_tokens", "effective_words"]
    for k in keys:
        vals = [r[k] for r in runs if r.get(k) is not None and not (isinstance(r[k], float) and math.isnan(r[k]))]
        s[k] = common.median(vals) if vals else None
    for k in ("ws353", "analogy"):
        vals = [r[k] for r in runs if r.get(k) is not None]
        if len(vals) > 1:
            s[f"{k}_min"], s[f"{k}_max"] = min(vals), max(vals)
    times = [r["train_s"] for r in runs if r.get("train_s")]
    if len(times) > 1:
        s["train_s_min"], s["train_s_max"] = min(times), max(times)
        s["best_raw_wps"] = max(r["raw_wps"] for r in runs if r.get("raw_wps"))
    loads = [x for r in runs for x in r.get("loadavg", [])]
    s["max_loadavg"] = max(loads) if loads else None
    return s


def ratios(summary: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for row, s in summary.items():
        peer = peer_of(row)
        if peer is None or peer not in summary or s.get("diverged"):
            continue
        g = summary[peer]

        def ratio(k):
            a, b = s.get(k), g.get(k)
            return a / b if a is not None and b else None

        out[row] = {"peer": peer, "raw_wps": ratio("raw_wps"), "eff_wps": ratio("eff_wps"),
                    "peak_rss": ratio("peak_rss"), "ws353": ratio("ws353"), "analogy": ratio("analogy")}
    return out


def markdown(record: dict) -> str:
    summary, rat = record["summary"], record["ratios"]
    header = ["row", "train s", "CPU s", "setup s", "raw words/s", "eff. words/s", "pairs/s", "first call s", "peak MiB", "base MiB",
              "WS353 ρ", "analogy %", "vocab", "load"]
    rows = []
    for row, s in summary.items():
        if s.get("diverged"):
            rows.append([row, "diverged", *["-"] * (len(header) - 2)])
            continue
        t = s["train_s"]
        if "train_s_min" in s:
            t = f"{t:.1f} ({s['train_s_min']:.1f}–{s['train_s_max']:.1f})"
        ws, an = s["ws353"], None if s["analogy"] is None else 100 * s["analogy"]
        if "ws353_min" in s:
            ws = f"{ws:.3f} ({s['ws353_min']:.3f}–{s['ws353_max']:.3f})"
            an = f"{an:.2f} ({100 * s['analogy_min']:.2f}–{100 * s['analogy_max']:.2f})"
        rows.append([row, t, s["cpu_s"], s["setup_s"], s["raw_wps"], s["eff_wps"], s["pairs_ps"], s["first_call_extra_s"],
                     common.mib(s["peak_rss"]), common.mib(s["base_rss"]), ws, an, s["vocab_size"], s["max_loadavg"]])
    parts = [f"Command: `{record['command']}`", "",
             f"Corpus: {record['corpus']} — {int(record['raw_tokens']):,} tokens, epochs {record['args']['epochs']}; "
             f"hyperparameters: dim {record['args']['dim']}, window {record['args']['window']}, "
             f"negative {record['args']['negative']}, sample {record['args']['sample']}, "
             f"min_count {record['args']['min_count']}, alpha {record['args']['alpha']} → "
             f"{record['args']['min_alpha']}, gensim workers {record['args']['workers']}.", "",
             common.markdown_table(header, rows), "",
             f"Seeds: {'repeat r uses seed ' + str(record['args']['seed']) + ' + r (scores: median, min–max over seeds)' if record['args'].get('vary_seed') else 'every repeat uses seed ' + str(record['args']['seed'])}.", "",
             "sg_jax's compilation cache: " + ("warm (filled by an untimed run of each sg_jax row: a later run with "
                                               "the same shapes)" if record['args'].get('compile_cache') == "warm"
                                               else "cold (an empty one for every run: each run compiles)") + ".", "",
             "train s: median over repeats (min–max); pairs/s: sg_jax skip-gram (target, context) pairs trained "
             "per second; CPU s: process CPU time during training (both cores "
             "count); load: the highest 1-minute load average seen around the row's runs (other processes "
             "on the machine inflate wall times). peak MiB includes jit compilation (about 230 MiB for "
             "sg_jax's first call).", ""]
    if rat:
        parts += ["Ratios sg_jax / gensim (same architecture and objective):", "",
                  common.markdown_table(["row", "vs", "raw words/s", "eff. words/s", "peak MiB", "WS353 ρ", "analogy"],
                                        [[r, v["peer"], v["raw_wps"], v["eff_wps"], v["peak_rss"], v["ws353"],
                                          v["analogy"]] for r, v in rat.items()]), ""]
    for row, s in summary.items():
        if s.get("diverged"):
            parts += [f"{row}: {s['diverged']}", ""]
    parts += ["Machine:", "", common.machine_markdown(record["machine"])]
    return "\n".join(parts)


def main(argv=None) -> int:
    from sg_jax.mesh import host_device_flags

    host_device_flags(None)  # before JAX starts: every core a device, for the rows that use them
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--corpus", default="default",
                   help="corpus for both trainers: default (bundled Brown), default-xN (Brown N times over) or a path")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows from: {', '.join(ROWS)}")
    p.add_argument("--repeats", type=int, default=1, help="runs of each row (interleaved); medians are reported")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--alpha", type=float, default=0.025)
    p.add_argument("--min-alpha", type=float, default=0.0001)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gensim worker threads")
    p.add_argument("--restrict-vocab", type=int, default=300_000, help="analogy search space (both trainers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vary-seed", action="store_true",
                   help="repeat r trains with seed SEED + r (both trainers), so the medians of the scores are over "
                        "seeds, not one seed's run repeated")
    p.add_argument("--compile-cache", choices=("cold", "warm"), default="cold",
                   help="sg_jax's persistent compilation cache: cold, an empty one for every run (each run compiles "
                        "its programs: a first run); warm, one this benchmark shares, filled by an untimed run of "
                        "each sg_jax row before the timed ones (a later run with the same shapes)")
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        result = run_worker(args.worker, args)
        Path(args.result).write_text(json.dumps(result), encoding="utf-8")
        return 0

    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    runs: dict[str, list[dict]] = {r: [] for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        shared_cache = Path(tmp) / "xla-cache"
        corpus = common.repeated_corpus(args.corpus, Path(tmp)) or args.corpus

        def worker(row, seeded, result):
            cache = shared_cache if args.compile_cache == "warm" else Path(tempfile.mkdtemp(dir=tmp))
            env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
            cmd = [sys.executable, os.path.abspath(__file__), *worker_args(argparse.Namespace(
                       **{**vars(seeded), "corpus": corpus})), "--worker", row,
                   "--result", str(result)]
            return subprocess.run(cmd, env={**env, "SG_JAX_COMPILATION_CACHE": str(cache)})

        if args.compile_cache == "warm":
            for row in rows:
                if ROWS[row][0] == "sg_jax":
                    print(f"filling the compilation cache: {row} (untimed)", flush=True)
                    worker(row, args, Path(tmp) / f"{row}.fill.json")
        for rep in range(args.repeats):
            for row in rows:
                result = Path(tmp) / f"{row}.{rep}.json"
                seeded = argparse.Namespace(**{**vars(args), "seed": args.seed + rep}) if args.vary_seed else args
                t = time.perf_counter()
                proc = worker(row, seeded, result)
                if proc.returncode != 0 or not result.exists():
                    print(f"{row}: worker failed (exit {proc.returncode})", file=sys.stderr)
                    runs[row].append({"row": row, "diverged": f"worker failed with exit code {proc.returncode}"})
                    continue
                r = json.loads(result.read_text(encoding="utf-8"))
                runs[row].append(r)
                msg = (f"diverged: {r['diverged']}" if "diverged" in r else
                       f"train {r['train_s']:.1f} s, {r['raw_wps']:,.0f} raw words/s, "
                       f"peak {common.mib(r['peak_rss'])} MiB, WS353 {r['ws353']:.3f}, analogy {100 * r['analogy']:.2f}%")
                print(f"[{rep + 1}/{args.repeats}] {row}: {msg} ({time.perf_counter() - t:.0f} s wall)", flush=True)

    import gensim

    summary = {r: summarize(v) for r, v in runs.items() if v}
    raw_tokens = next((s["raw_tokens"] for s in summary.values() if s.get("raw_tokens")), 0)
    record = {
        "command": common.command_line(), "corpus": args.corpus, "raw_tokens": raw_tokens,
        "args": {k: v for k, v in vars(args).items() if k not in ("worker", "result")},
        "machine": common.machine({"gensim": gensim.__version__}),
        "summary": summary, "ratios": ratios(summary), "runs": runs,
    }
    vocab_sizes = {s["vocab_size"] for s in summary.values() if s.get("vocab_size")}
    if len(vocab_sizes) > 1:
        print(f"warning: the trainers' vocabularies differ in size: {sorted(vocab_sizes)}", file=sys.stderr)
    text = markdown(record)
    print()
    print(text)
    if args.out:
        paths = common.write_outputs(args.out, record, text)
        print(f"\nwrote {paths[0]} and {paths[1]}")
    return 0


SHARED = ("corpus", "epochs", "dim", "window", "negative", "sample", "min_count", "alpha", "min_alpha", "workers",
          "restrict_vocab", "seed")


def worker_args(args) -> list[str]:
    """The options every row shares, spelled out for the worker subprocess."""
    return [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in SHARED]


if __name__ == "__main__":
    sys.exit(main())
