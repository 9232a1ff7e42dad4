"""The `sg-jax` commands other than the sweep: train, gradcheck, similar, analogy, eval."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys

import jax

from sg_jax.architectures import ARCHITECTURES
from sg_jax.cli.options import ArgsDefault, add_config_arguments, config_from_args
from sg_jax.config import config_fields
from sg_jax.console import progress_callback, read_progress_callback
from sg_jax.data.corpus import load_corpus
from sg_jax.data.encoded import CACHE_ENV, config_options, write_encoded
from sg_jax.embeddings import Embeddings
from sg_jax.errors import ConfigError
from sg_jax.evaluation import DEFAULT_RESTRICT_VOCAB, evaluate_analogies, evaluate_similarity, format_table
from sg_jax.gradcheck import run_gradcheck
from sg_jax.mesh import initialize_distributed
from sg_jax.objectives import REGISTRY
from sg_jax.processes import supervisor
from sg_jax.processes.rendezvous import Hello, check_launch
from sg_jax.processes.supervisor import supervised
from sg_jax.run_files import checkpoint_identity, out_dir_refusal
from sg_jax.runs import CheckpointPolicy, run_training
from sg_jax.version import __version__


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text[:40]!r}")
    return value


# --------------------------------------------------------------------------- train


# --devices when not given: 1 device, or in a run of several processes every process's devices
# (a multi-process run trains over all of them, as one process with as many devices would)
DEFAULT_DEVICES = ArgsDefault("1; with several processes, all: every process's devices",
                              lambda args: None if several_processes(args) else 1)


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train embeddings on a corpus", description="Train word embeddings and write "
                       "DIR/vectors.txt (word2vec text format), a checkpoint, a metrics log and a manifest.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--corpus", default="default",
                   help="a text file (one sentence per line, or text8's single line; .gz ok), "
                        "'default' (bundled Brown corpus), 'toy:groups' or 'toy:seeds'")
    add_config_arguments(p, defaults={"devices": DEFAULT_DEVICES})
    g = p.add_argument_group("output")
    g.add_argument("--binary", action="store_true", help="also write DIR/vectors.bin (word2vec binary format)")
    g.add_argument("--resume", action="store_true", help="continue the run in DIR (with more --epochs than it had: "
                   "extend a finished run)")
    g.add_argument("--overwrite", action="store_true", help="replace a run already in DIR")
    g.add_argument("--stop-after-epoch", type=positive_int, default=None,
                   help="stop after this epoch (resume later with --resume; the schedule spans --epochs)")
    g.add_argument("--checkpoint-every-steps", type=positive_int, default=None, help="checkpoint interval in steps")
    g.add_argument("--checkpoint-every-seconds", type=float, default=600.0, help="checkpoint interval in seconds")
    g.add_argument("--show", default=None, help="comma-separated words whose neighbours to print at the end")
    g.add_argument("-k", type=positive_int, default=8, help="neighbours to print (default 8)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    g = p.add_argument_group("several processes (jax.distributed; process 0 writes the outputs)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="the coordinator's address "
                   "(process 0 serves it)")
    g.add_argument("--num-processes", type=positive_int, default=None, help="processes in the run")
    g.add_argument("--process-id", type=int, default=None, help="this process's number, 0 to P - 1")
    g.add_argument("--coordinator-timeout", type=positive_float, default=60.0,
                   help="seconds to wait for the coordinator and the other processes, and the longest a "
                        "process may fall silent before the others end the run (default 60)")
    g.add_argument("--corpus-cache", default=None, metavar="DIR", help="keep the encoded corpus under DIR, keyed by "
                   "the corpus's fingerprint and the reading options, and reuse it in later runs (also "
                   "SG_JAX_CORPUS_CACHE); --corpus may also be a directory written by sg-jax encode")
    p.set_defaults(func=cmd_train)


# the Config fields that decide how a corpus is read (the encode command's options)
READ_FIELDS = ("min_count", "max_vocab", "lowercase", "encoding_errors", "unicode_normalization", "strip_diacritics")


def add_encode(sub) -> None:
    p = sub.add_parser("encode", help="read a corpus once into a directory that train can use",
                       description="Read and encode CORPUS (vocabulary, ids and sentence offsets as memory-mappable "
                       "arrays, checksums in a manifest) into DIR; pass DIR as train's --corpus to skip reading. "
                       "A damaged or stale DIR (its corpus changed) is refused.")
    p.add_argument("corpus", help="a text file (.gz ok) or 'default'")
    p.add_argument("--out", required=True, help="output directory")
    add_config_arguments(p, exclude=[f.name for f in config_fields() if f.name not in READ_FIELDS])
    p.set_defaults(func=cmd_encode)


def cmd_encode(args) -> int:
    config = config_from_args(args)
    on_read, close = read_progress_callback(True, desc="encode")
    try:
        vocab, corpus, stats = write_encoded(args.corpus, args.out, config_options(config), reader=load_corpus,
                                             on_progress=on_read)
    finally:
        close()
    print(f"corpus: {stats.summary()}")
    print(f"encoded {corpus.n_tokens:,} tokens in {corpus.n_sentences:,} sentences, {len(vocab):,} words "
          f"(min_count={config.min_count}) into {args.out}")
    return 0


def several_processes(args) -> bool:
    """Whether the run is one of several processes (--coordinator, --num-processes and
    --process-id, all three or none)."""
    given = [args.coordinator is not None, args.num_processes is not None, args.process_id is not None]
    if any(given) and not all(given):
        raise ConfigError("a multi-process run needs --coordinator, --num-processes and --process-id together")
    return all(given)


def join_processes(args) -> None:
    """Start jax.distributed when --coordinator is given (before anything else uses JAX); in a
    child of the supervisor, at the coordinator address it was given."""
    if not several_processes(args):
        return

    spec = supervised() or {"coordinator": args.coordinator, "timeout": args.coordinator_timeout}
    initialize_distributed(spec["coordinator"], args.num_processes, args.process_id, timeout=spec["timeout"])


def supervise_training(args, config) -> int:
    """The process a user starts in a multi-process run: meet the other processes (agreeing on
    the number of processes, the ids, the options and whether every output directory can take
    the run), then train in a supervised child process (`sg_jax.processes.supervisor`)."""
    check_launch(args.coordinator, args.num_processes, args.process_id, args.coordinator_timeout)
    shared = {"config": config.to_dict(), "resume": args.resume, "overwrite": args.overwrite,
              "stop_after_epoch": args.stop_after_epoch, "version": __version__}
    fingerprint = hashlib.sha256(json.dumps(shared, sort_keys=True).encode()).hexdigest()
    hello = Hello(args.process_id, args.num_processes, fingerprint,
                  out_dir_refusal(args.out, resume=args.resume, overwrite=args.overwrite),
                  checkpoint_identity(args.out) if args.resume else None)
    return supervisor.run(args.argv, args.coordinator, hello, args.coordinator_timeout)


def cmd_train(args) -> int:
    config = config_from_args(args)
    if several_processes(args) and supervised() is None:
        return supervise_training(args, config)
    join_processes(args)
    policy = CheckpointPolicy(every_steps=args.checkpoint_every_steps, every_seconds=args.checkpoint_every_seconds)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    on_call, close = progress_callback(not args.quiet)
    on_read, close_read = read_progress_callback(not args.quiet)
    cache_before = os.environ.get(CACHE_ENV)
    if args.corpus_cache:  # the run path reads the cache directory from the environment
        os.environ[CACHE_ENV] = args.corpus_cache
    try:
        out = run_training(config, args.corpus, args.out, binary=args.binary, resume=args.resume,
                           overwrite=args.overwrite, until_epoch=args.stop_after_epoch, checkpoint=policy,
                           on_call=on_call, log=log, on_read=on_read)
    finally:
        if args.corpus_cache:
            if cache_before is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = cache_before
        close_read()
        close()
    r, config = out.result, out.result.config
    V = len(out.vocab)
    if args.process_id:  # a helper process of a multi-process run: process 0 reports
        return 0
    print(f"trained {config.arch}/{config.objective} dim={config.dim} window={config.window} on {V} words: "
          f"{r.words_done} words in {r.seconds:.1f} s ({r.words_per_second:,.0f} words/s), final loss {r.final_loss:.4f}"
          + (f" (uniform baseline log V = {math.log(V):.4f})" if config.objective == "softmax" else ""))
    print(f"wrote {out.out_dir / 'vectors.txt'}" + (f", {out.out_dir / 'vectors.bin'}" if args.binary else "")
          + f" and {out.out_dir / 'checkpoint.sgjax'}")
    emb = Embeddings(out.vocab.words, r.vectors())
    show = args.show.split(",") if args.show else _probe_words(out.vocab)
    for word in show:
        if word in emb:
            neighbours = ", ".join(f"{w} {s:.2f}" for w, s in emb.most_similar(word, k=args.k))
            print(f"  {word:>12}: {neighbours}")
    return 0


def _probe_words(vocab, n: int = 6) -> list[str]:
    """A few frequent content words (skipping the very top, mostly function words)."""
    words = [w for w in vocab.words[20:200] if len(w) > 3]
    return words[:: max(1, len(words) // n)][:n] or list(vocab.words[:n])


# --------------------------------------------------------------------------- gradcheck


def add_gradcheck(sub) -> None:
    p = sub.add_parser("gradcheck", help="check every objective's gradients: jax.grad vs finite differences "
                       "and the hand derivation", description="Compare jax.grad with central finite differences "
                       "and, where an objective registers one, with its hand-derived closed form, on random float64 "
                       "problems; exit 1 if any disagree.")
    p.add_argument("--objective", default="all", choices=["all", *REGISTRY])
    p.add_argument("--arch", default="all", choices=["all", *ARCHITECTURES])
    p.add_argument("--vocab-size", type=positive_int, default=11)
    p.add_argument("--dim", type=positive_int, default=5)
    p.add_argument("--contexts", type=positive_int, default=4, help="context slots per target (C)")
    p.add_argument("--batch", type=positive_int, default=3, help="targets per problem")
    p.add_argument("--negative", type=positive_int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=positive_float, default=1e-8, help="max relative error, derivation vs jax.grad")
    p.add_argument("--fd-tol", type=positive_float, default=1e-5,
                   help="max relative error, finite differences vs jax.grad")
    p.set_defaults(func=cmd_gradcheck)


def cmd_gradcheck(args) -> int:
    failed = 0

    def show(report) -> None:  # each check as it ends: the whole run takes about a minute
        nonlocal failed
        ok = report.ok(args.tol, args.fd_tol)
        failed += not ok
        print(("ok   " if ok else "FAIL ") + report.format(), flush=True)

    with jax.enable_x64(True):  # float64 for this command only (library callers keep their setting)
        reports = run_gradcheck(objectives=args.objective, archs=args.arch, vocab_size=args.vocab_size,
                                dim=args.dim, contexts=args.contexts, batch=args.batch, negative=args.negative,
                                seed=args.seed, on_report=show)
    print(f"{len(reports) - failed} passed, {failed} failed")
    return 1 if failed else 0


# --------------------------------------------------------------------------- queries


def add_queries(sub) -> None:
    p = sub.add_parser("similar", help="nearest neighbours of a word (or of a sum of words)")
    p.add_argument("words", nargs="+", help="word(s) whose unit vectors are summed")
    p.add_argument("--vectors", required=True, help="word2vec text or binary file")
    p.add_argument("--negative", nargs="*", help="words to subtract")
    p.add_argument("-k", "--topn", dest="k", type=positive_int, default=10, help="neighbours to print (default 10)")
    p.add_argument("--restrict-vocab", type=positive_int, default=None, help="search only the first N words")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("analogy", help="a : b :: c : ?")
    p.add_argument("a"), p.add_argument("b"), p.add_argument("c")
    p.add_argument("--vectors", required=True, help="word2vec text or binary file")
    p.add_argument("--method", choices=["add", "mul"], default="add", help="3CosAdd or 3CosMul")
    p.add_argument("-k", "--topn", dest="k", type=positive_int, default=5, help="answers to print (default 5)")
    p.add_argument("--restrict-vocab", type=positive_int, default=None, help="search only the first N words")
    p.set_defaults(func=cmd_analogy)

    p = sub.add_parser("eval", help="WordSim-353 and Google analogy scores of a vectors file")
    p.add_argument("--vectors", required=True, help="word2vec text or binary file")
    p.add_argument("--similarity", default=None, help="a word-pair similarity file (default: bundled WordSim-353)")
    p.add_argument("--analogies", default=None, help="an analogy file (default: bundled Google analogies)")
    p.add_argument("--restrict-vocab", type=positive_int, default=DEFAULT_RESTRICT_VOCAB,
                   help=f"analogies search the N most frequent words (default {DEFAULT_RESTRICT_VOCAB}, "
                        "gensim's convention; the sweep uses the same)")
    p.add_argument("--method", choices=["add", "mul"], default="add")
    p.set_defaults(func=cmd_eval)


def cmd_similar(args) -> int:
    emb = Embeddings.load(args.vectors)
    for word, score in emb.most_similar(positive=args.words, negative=args.negative or (), k=args.k,
                                        restrict_vocab=args.restrict_vocab):
        bar = "#" * max(0, round(score * 30))
        print(f"{word:>20} {score:7.4f} {bar}")
    return 0


def cmd_analogy(args) -> int:
    emb = Embeddings.load(args.vectors)
    for word, score in emb.analogy(args.a, args.b, args.c, k=args.k, method=args.method,
                                   restrict_vocab=args.restrict_vocab):
        print(f"{args.a} : {args.b} :: {args.c} : {word}  ({score:.4f})")
    return 0


def cmd_eval(args) -> int:
    emb = Embeddings.load(args.vectors)
    sim = evaluate_similarity(emb, args.similarity) if args.similarity else evaluate_similarity(emb)
    ana = evaluate_analogies(emb, args.analogies, restrict_vocab=args.restrict_vocab, method=args.method) \
        if args.analogies else evaluate_analogies(emb, restrict_vocab=args.restrict_vocab, method=args.method)
    print(format_table([sim, ana]))
    print(f"analogies searched the {min(args.restrict_vocab, len(emb)):,} most frequent words "
          f"(--restrict-vocab {args.restrict_vocab})", file=sys.stdout)
    return 0
