"""Memory soak: many epochs over a large memory-mapped corpus, with the process RSS sampled.

Generates (once; reused while the parameters match) a synthetic Zipf corpus of `--tokens` tokens
on disk with `sg_jax.synthetic.write_zipf_corpus`, memory-maps it, and trains with
`Config.chunk_tokens` so that only one chunk of the corpus is on the device at a time. A
background thread reads /proc/self/status every `--interval` seconds (VmRSS = RssAnon +
RssFile + RssShmem). The report gives RSS over time and, per epoch, the min and max; the claim to
check is that after the first epoch the RSS stays flat (no growth from epoch to epoch).

RssFile counts the pages of the memory-mapped ids.npy that the process has touched: clean page
cache the kernel can drop at any time, which grows to the corpus size (4 bytes a token) during
the first epoch. RssAnon is the process's own memory (tables, the device chunk, buffers).

    python benchmarks/soak.py                                     # 100M tokens, 3 epochs
    python benchmarks/soak.py --tokens 10000000 --epochs 2        # a short run
    python benchmarks/soak.py --tokens 100000000 --epochs 2 --out benchmarks/results/soak
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import common

FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")


class RssSampler(threading.Thread):
    """Samples /proc/self/status every `interval` seconds, tagging each sample with the training
    position last reported (`self.epoch`: epoch + chunk / chunks, so int(epoch) is the epoch)."""

    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[dict] = []
        self.epoch = 0.0
        self._stop_event = threading.Event()
        self.t0 = time.perf_counter()

    def sample(self):
        s = common.proc_status(*FIELDS)
        s["t"] = time.perf_counter() - self.t0
        s["epoch"] = self.epoch
        self.samples.append(s)

    def run(self):
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()
        self.sample()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--tokens", type=int, default=100_000_000)
    p.add_argument("--vocab-size", type=int, default=100_000)
    p.add_argument("--exponent", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--chunk-tokens", type=int, default=1 << 24)
    p.add_argument("--objective", default="ns", choices=("ns", "hs"))
    p.add_argument("--share-negatives", default="target", choices=("auto", "none", "target", "batch", "pool"),
                   help="auto: the default run's (pools, in the span layout, for ns)")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between RSS samples")
    p.add_argument("--print-every", type=float, default=10.0, help="seconds between printed RSS lines")
    p.add_argument("--dir", help="where the corpus is written (default: a folder in the system temp dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    args = p.parse_args(argv)

    sampler = RssSampler(args.interval)
    sampler.start()

    from sg_jax.data.epoch import chunk_bounds
    from sg_jax.synthetic import write_zipf_corpus
    from sg_jax.train import Config, train

    directory = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / (
        f"sg_jax_zipf_{args.tokens}_{args.vocab_size}_{args.exponent:g}_{args.seed}")
    t = time.perf_counter()
    vocab, corpus = write_zipf_corpus(directory, args.tokens, args.vocab_size, exponent=args.exponent,
                                      seed=args.seed)
    gen_s = time.perf_counter() - t
    print(f"corpus: {corpus.n_tokens:,} tokens, V={len(vocab):,}, {corpus.n_sentences:,} sentences, "
          f"ids.npy {os.path.getsize(directory / 'ids.npy') / 2**20:,.0f} MiB, memory-mapped "
          f"({gen_s:.1f} s to generate or load)", flush=True)
    config = Config(objective=args.objective, share_negatives=args.share_negatives, dim=args.dim,
                    batch_size=args.batch, epochs=args.epochs, lr=args.lr, min_count=1,
                    chunk_tokens=args.chunk_tokens, seed=args.seed)

    n_chunks = len(chunk_bounds(corpus.offsets, args.chunk_tokens))
    last_print = [time.perf_counter()]
    epoch_end: dict[int, dict] = {}

    last_record: list = [None]

    def on_call(state, position, record):
        last_record[0] = record
        # position: where training goes on from (the next chunk once a chunk is finished)
        sampler.epoch = position.epoch + position.chunk / n_chunks
        done = position.epoch
        if done >= 1 and (done - 1) not in epoch_end and position.chunk == 0 and position.step == 0:
            epoch_end[done - 1] = {"seconds": record["seconds"], **common.proc_status("VmRSS", "RssAnon")}
            print(f"epoch {done}/{args.epochs} done at {record['seconds']:.0f} s, "
                  f"{record['words'] / record['seconds']:,.0f} words/s so far, loss {record['loss']:.3f}", flush=True)
        now = time.perf_counter()
        if now - last_print[0] >= args.print_every:
            last_print[0] = now
            s = sampler.samples[-1] if sampler.samples else {}
            print(f"  t={s.get('t', 0):7.1f} s  epoch {position.epoch + 1} chunk {position.chunk + 1}/{n_chunks}  RSS {common.mib(s.get('VmRSS'))} MiB "
                  f"(anon {common.mib(s.get('RssAnon'))}, file {common.mib(s.get('RssFile'))})", flush=True)

    t_train = time.perf_counter() - sampler.t0
    # SIGTERM (e.g. from `timeout`) or Ctrl-C ends training early; what was sampled is still reported
    signal.signal(signal.SIGTERM, _interrupt)
    interrupted = False
    try:
        train(config, vocab.words, vocab.counts, corpus.ids, corpus.offsets, on_call=on_call)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: reporting the epochs done so far", flush=True)
    sampler.stop()
    last = last_record[0] or {"seconds": float("nan"), "words": 0, "loss": float("nan")}
    train_s = last["seconds"]
    words_per_s = last["words"] / train_s if train_s else float("nan")
    epochs_done = len(epoch_end)

    samples = [s for s in sampler.samples if "VmRSS" in s]
    per_epoch = []
    for e in range(args.epochs):
        sel = [s for s in samples if s["t"] >= t_train and e <= s["epoch"] < e + 1]
        if e == args.epochs - 1:
            sel += [s for s in samples if s["epoch"] >= args.epochs]
        if sel:
            end = epoch_end.get(e, {})
            per_epoch.append({"epoch": e + 1, "samples": len(sel), "end_s": end.get("seconds"),
                              "VmRSS_end": end.get("VmRSS"), "RssAnon_end": end.get("RssAnon"),
                              **{f"{k}_{f}": fn(s[k] for s in sel) for k in ("VmRSS", "RssAnon", "RssFile")
                                 for f, fn in (("min", min), ("max", max))}})
    after_first = [s for s in samples if s["epoch"] >= 1]
    summary = {
        "tokens": corpus.n_tokens, "vocab_size": len(vocab), "epochs": args.epochs, "chunk_tokens": args.chunk_tokens,
        "chunks": len(chunk_bounds(corpus.offsets, args.chunk_tokens)), "train_s": train_s,
        "words_per_s": words_per_s, "final_loss": last["loss"], "epochs_done": epochs_done, "interrupted": interrupted, "peak_rss": samples[-1].get("VmHWM"),
    }
    if after_first:
        for k in ("VmRSS", "RssAnon"):
            lo, hi = min(s[k] for s in after_first), max(s[k] for s in after_first)
            summary[f"{k}_after_epoch1_min"], summary[f"{k}_after_epoch1_max"] = lo, hi
    later = per_epoch[1:]
    if later:
        summary["epoch_max_rss_after_epoch1"] = [e["VmRSS_max"] for e in later]
        summary["epoch_end_rss_after_epoch1"] = [e["VmRSS_end"] for e in later]
    epoch_rows = [[e["epoch"], e["end_s"], e["samples"], common.mib(e["VmRSS_min"]), common.mib(e["VmRSS_max"]),
                   common.mib(e["VmRSS_end"]), common.mib(e["RssAnon_min"]), common.mib(e["RssAnon_max"]),
                   common.mib(e["RssAnon_end"]), common.mib(e["RssFile_max"])]
                  for e in per_epoch]
    lines = [f"Command: `{common.command_line()}`", "",
             f"Corpus: synthetic Zipf (exponent {args.exponent}), {corpus.n_tokens:,} tokens, V = {len(vocab):,}, "
             f"memory-mapped; chunk_tokens {args.chunk_tokens:,} ({summary['chunks']} chunks); "
             f"{args.objective} share={args.share_negatives}, dim {args.dim}, batch {args.batch}, "
             f"{epochs_done} of {args.epochs} epochs in {train_s:,.0f} s ({words_per_s:,.0f} words/s)"
             f"{'; interrupted' if interrupted else ''}.", "",
             common.markdown_table(["epoch", "ends at s", "samples", "RSS min MiB", "RSS max MiB", "RSS at end MiB",
                                    "anon min MiB", "anon max MiB", "anon at end MiB", "file max MiB"], epoch_rows), "",
             "min/max over the samples taken during the epoch (the maxima come from the chunk changes, when "
             "a chunk is copied to the device and subsampled/shuffled); \"at end\": read when the epoch's last "
             "jitted call returned.", ""]
    if after_first:
        lines += [f"After the first epoch: RSS {common.mib(summary['VmRSS_after_epoch1_min'])}–"
                  f"{common.mib(summary['VmRSS_after_epoch1_max'])} MiB, anonymous "
                  f"{common.mib(summary['RssAnon_after_epoch1_min'])}–{common.mib(summary['RssAnon_after_epoch1_max'])} MiB; "
                  f"peak RSS of the process {common.mib(summary['peak_rss'])} MiB.", ""]
    if later:
        lines += ["Per-epoch maximum RSS after the first epoch (MiB): "
                  + ", ".join(str(common.mib(x)) for x in summary["epoch_max_rss_after_epoch1"])
                  + "; RSS at the end of each of those epochs (MiB): "
                  + ", ".join(str(common.mib(x)) for x in summary["epoch_end_rss_after_epoch1"]) + ".", ""]
    lines += ["Machine:", "", common.machine_markdown(common.machine())]
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        record = {"command": common.command_line(), "args": vars(args), "summary": summary, "per_epoch": per_epoch,
                  "samples": samples, "machine": common.machine()}
        paths = common.write_outputs(args.out, record, text)
        print(f"\nwrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
