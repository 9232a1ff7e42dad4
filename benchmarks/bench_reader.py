"""Reading a corpus: sg_jax's reader (tokenize, count, encode) against gensim's vocabulary scan.

Each row runs in a fresh subprocess (so its peak memory is its own) on the same file and reports:

* tokens         corpus tokens as sg_jax's tokenizer reads them (the same numerator for every row)
* wall s         the row's reading time: sg_jax `load_corpus` (vocabulary and the memory-mapped
                 encoded corpus, i.e. everything training needs); the `reference` row is the
                 sequential reader (`Vocab.build` then `encode_corpus_to_disk`, two passes on one
                 core); gensim `Word2Vec.build_vocab(LineSentence(path))` (one pass, counting
                 only, whitespace tokenization, no encoding)
* tokens/s       tokens / wall s; the report prints each row's ratio to gensim's
* peak MiB       the row's process peak resident memory (VmHWM, reset after imports), and for
                 sg_jax the largest worker process's peak ("worker MiB")
* per token B    (peak - resident before reading) / tokens: the growth with the corpus

The corpus is a file (`--corpus`, default the bundled Brown corpus, decompressed), repeated
`--repeat` times, or a generated one (`--generate TOKENS`: Zipf-distributed words, about 20 a
line, with punctuation), written to a temporary file.

    python benchmarks/bench_reader.py --repeat 10                     # Brown x 10 (~10M tokens)
    python benchmarks/bench_reader.py --corpus big.txt --rows sg_jax,gensim
    python benchmarks/bench_reader.py --generate 300000000 --rows sg_jax --out benchmarks/results/reader_300m
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROWS = ("sg_jax", "reference", "gensim")


def run_row(row: str, path: str, processes: int | None) -> dict:
    """One row, in this process (called in a subprocess by main)."""
    if row == "gensim":
        from gensim.models import Word2Vec
        from gensim.models.word2vec import LineSentence

        model = Word2Vec(vector_size=100, min_count=5, workers=max(1, os.cpu_count() or 1))
        sentences = LineSentence(path)
        before = common.proc_status("VmRSS")["VmRSS"]
        common.reset_peak_rss()
        start = time.perf_counter()
        model.build_vocab(sentences)
        wall = time.perf_counter() - start
        return {"wall_s": wall, "rss_before": before, "peak": common.proc_status("VmHWM")["VmHWM"],
                "vocab": len(model.wv), "raw_words": int(model.corpus_total_words)}
    from sg_jax.data.corpus import Vocab, encode_corpus_to_disk, load_corpus
    from sg_jax.data.text import ReadStats, iter_sentences

    out = Path(tempfile.mkdtemp(prefix="bench_reader-"))
    try:
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # git, at import
        before = common.proc_status("VmRSS")["VmRSS"]
        common.reset_peak_rss()
        start = time.perf_counter()
        if row == "sg_jax":
            vocab, corpus, stats = load_corpus(path, min_count=5, directory=out, processes=processes)
        else:
            stats = ReadStats()
            vocab = Vocab.build(iter_sentences(path, stats=stats), min_count=5)
            corpus = encode_corpus_to_disk(path, vocab, out)
        wall = time.perf_counter() - start
        peak = common.proc_status("VmHWM")["VmHWM"]
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB on Linux
        workers = children * 1024 if children > children_before else None  # None: no worker started
        return {"wall_s": wall, "rss_before": before, "peak": peak, "worker_peak": workers,
                "vocab": len(vocab), "tokens": stats.tokens, "encoded": int(corpus.n_tokens)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def make_corpus(args, workdir: Path) -> Path:
    if args.generate:
        import numpy as np

        rng = np.random.default_rng(0)
        letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
        words = ["".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(100_000)]
        punct = [",", ".", ";", "", "", "", "", ""]
        path = workdir / "generated.txt"
        with open(path, "w") as f:
            done = 0
            while done < args.generate:
                n = min(1_000_000, args.generate - done)
                ids = (rng.zipf(1.1, n) - 1) % len(words)
                tokens = [words[i] + punct[i % 8] for i in ids.tolist()]
                f.write("\n".join(" ".join(tokens[i:i + 20]) for i in range(0, n, 20)) + "\n")
                done += n
        return path
    source = Path(args.corpus) if args.corpus else None
    if source is None:
        from sg_jax.data.text import DEFAULT_CORPUS_PATH

        source = DEFAULT_CORPUS_PATH
    opener = gzip.open if source.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(source, "rb") as f:
        data = f.read()
    if args.repeat == 1 and opener is open:
        return source
    path = workdir / "repeated.txt"
    with open(path, "wb") as f:
        for _ in range(args.repeat):
            f.write(data if data.endswith(b"\n") else data + b"\n")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", help="a text file (plain or .gz); default the bundled Brown corpus")
    ap.add_argument("--repeat", type=int, default=1, help="repeat the corpus this many times")
    ap.add_argument("--generate", type=int, default=0, help="generate a corpus of this many tokens instead")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    ap.add_argument("--processes", type=int, default=None, help="sg_jax reader processes (default: one per core)")
    ap.add_argument("--out", help="write PATH.json and PATH.md")
    ap.add_argument("--row", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.row:  # a subprocess: one row
        print(json.dumps(run_row(args.row, args.path, args.processes)))
        return 0
    rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(ROWS)}")
    workdir = Path(tempfile.mkdtemp(prefix="bench_reader-corpus-"))
    try:
        path = make_corpus(args, workdir)
        size = path.stat().st_size
        results = {}
        for row in rows:
            cmd = [sys.executable, __file__, "--row", row, "--path", str(path)]
            if args.processes:
                cmd += ["--processes", str(args.processes)]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=24 * 3600)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return 1
            results[row] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    tokens = next((r["tokens"] for r in results.values() if "tokens" in r), None)
    gensim_rate = tokens / results["gensim"]["wall_s"] if tokens and "gensim" in results else None
    table = []
    for row, r in results.items():
        rate = tokens / r["wall_s"] if tokens else None
        grow = (r["peak"] - r["rss_before"]) / tokens if tokens else None
        table.append([row, tokens, round(r["wall_s"], 2), None if rate is None else round(rate),
                      None if not gensim_rate else round(rate / gensim_rate, 2), common.mib(r["peak"]),
                      common.mib(r.get("worker_peak")), None if grow is None else round(grow, 2), r["vocab"]])
    info = common.machine({"corpus_bytes": size, "load_average": os.getloadavg()[0],
                           "corpus": args.corpus or ("generated" if args.generate else "brown"),
                           "repeat": args.repeat, "generate": args.generate})
    report = ("# Reading a corpus: sg_jax against gensim's vocabulary scan\n\n"
              + common.markdown_table(["row", "tokens", "wall s", "tokens/s", "x gensim", "peak MiB",
                                       "worker MiB", "per token B", "vocab"], table)
              + "\n\n" + common.machine_markdown(info) + "\n")
    print(report)
    if args.out:
        from sg_jax.atomic import atomic_write_text

        atomic_write_text(Path(args.out + ".json"), json.dumps({"machine": info, "rows": results}, indent=1))
        atomic_write_text(Path(args.out + ".md"), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
