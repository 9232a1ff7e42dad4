"""The `sg-jax` command line. Argument parsing only; the work is done by the library modules.

Every error a user can cause ends in one line on stderr, `sg-jax: error: ...`, and exit status 2;
no output file is left half-written (all outputs are written atomically).
"""

from __future__ import annotations

import argparse
import sys

from sg_jax.errors import SgJaxError

DESCRIPTION = """\
Skip-gram and CBOW word embeddings (word2vec) in JAX.

  sg-jax train --corpus default --out runs/brown      train, write vectors + checkpoint
  sg-jax similar king --vectors runs/brown/vectors.txt nearest neighbours
  sg-jax analogy man king woman --vectors ...          man : king :: woman : ?
  sg-jax eval --vectors runs/brown/vectors.txt         WordSim-353 and Google analogies
  sg-jax gradcheck                                     hand derivations vs jax.grad
  sg-jax sweep --out runs/sweep                        window x dimension study
  sg-jax graph --edges karate --out runs/karate        DeepWalk / node2vec node embeddings
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_training_arguments(p: argparse.ArgumentParser, *, epochs: int = 5, dim: int = 100) -> None:
    """The model and data options shared by `train` and `sweep`."""
    from sg_jax.train import Config

    d = Config()
    g = p.add_argument_group("model")
    g.add_argument("--arch", choices=["sg", "cbow"], default=d.arch, help="skip-gram or CBOW (default: sg)")
    g.add_argument("--objective", choices=["softmax", "ns", "hs"], default=d.objective,
                   help="exact full softmax, negative sampling, or hierarchical softmax (default: ns)")
    g.add_argument("--negative", type=int, default=d.negative, help="noise words per prediction (ns; default 5)")
    g.add_argument("--share-negatives", choices=["none", "target", "batch"], default=d.share_negatives,
                   help="draw noise words per pair (none, as word2vec), per target and its contexts "
                        "(target, the default: 4x fewer rows to move, same quality as measured), or per batch")
    g.add_argument("--sg-form", choices=["auto", "target", "context"], default=d.sg_form,
                   help="skip-gram: the target's vector predicts its contexts (target, the textbook form) or "
                        "each context's vector predicts the target (context, word2vec's form); auto: target "
                        "for softmax, context otherwise")
    g.add_argument("--init", choices=["word2vec", "normal"], default=d.init, help="parameter initialisation")
    g = p.add_argument_group("data")
    g.add_argument("--corpus", default="default",
                   help="a text file (one sentence per line, or text8's single line; .gz ok), "
                        "'default' (bundled Brown corpus), 'toy:groups' or 'toy:seeds'")
    g.add_argument("--min-count", type=int, default=d.min_count, help="drop words rarer than this (default 5)")
    g.add_argument("--max-vocab", type=int, default=None, help="keep only the N most frequent words")
    g.add_argument("--sample", type=float, default=d.sample, help="subsampling threshold, 0 disables (default 1e-3)")
    g.add_argument("--fixed-window", action="store_true", help="use the full window for every target "
                   "(default: word2vec's dynamic window, 1..window)")
    g.add_argument("--no-lowercase", action="store_true", help="keep the case of the corpus")
    g.add_argument("--encoding-errors", choices=["strict", "replace"], default="strict",
                   help="invalid UTF-8: stop with an error (strict) or replace with U+FFFD")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=epochs, help=f"passes over the corpus (default {epochs})")
    g.add_argument("--lr", type=float, default=None, help="initial learning rate (default 0.025 sg, 0.05 cbow)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="targets per step (default 1024)")
    g.add_argument("--pairs", action="store_true", help="batches of (target, context) pairs instead of target groups")
    g.add_argument("--no-shuffle", action="store_true", help="visit targets in corpus order")
    g.add_argument("--clip-norm", type=float, default=None, help="clip each step's gradient to this global norm")
    g.add_argument("--dup-cap", type=float, default=None,
                   help="a row met n > CAP times in one batch moves by CAP/n of its summed gradient "
                        "(default: 64 for hs, whose root node is in every path; off otherwise)")
    g.add_argument("--seed", type=int, default=d.seed, help="random seed (default 0)")


def config_from_args(args, **overrides):
    from sg_jax.train import Config

    fields = dict(arch=args.arch, objective=args.objective, negative=args.negative,
                  share_negatives=args.share_negatives, init=args.init, min_count=args.min_count,
                  max_vocab=args.max_vocab, sample=args.sample, dynamic_window=not args.fixed_window,
                  epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, pairs=args.pairs,
                  shuffle=not args.no_shuffle, clip_norm=args.clip_norm, seed=args.seed, sg_form=args.sg_form,
                  dup_cap=args.dup_cap)
    for name in ("dim", "window"):
        if hasattr(args, name):
            fields[name] = getattr(args, name)
    fields.update(overrides)
    return Config(**fields).validate()


def cmd_train(args) -> int:
    import math

    from sg_jax.embeddings import Embeddings
    from sg_jax.runs import CheckpointPolicy, run_training

    config = config_from_args(args)
    policy = CheckpointPolicy(every_steps=args.checkpoint_every_steps, every_seconds=args.checkpoint_every_seconds)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    out = run_training(config, args.corpus, args.out, binary=args.binary, resume=args.resume,
                       until_epoch=args.stop_after_epoch, checkpoint=policy, lowercase=not args.no_lowercase,
                       encoding_errors=args.encoding_errors, progress=not args.quiet, log=log)
    r = out.result
    V = len(out.vocab)
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


def cmd_gradcheck(args) -> int:
    import jax

    from sg_jax.derivations import run_gradcheck

    with jax.enable_x64(True):  # float64 for this command only (library callers keep their setting)
        reports = run_gradcheck(objectives=args.objective, archs=args.arch, vocab_size=args.vocab_size,
                                dim=args.dim, contexts=args.contexts, batch=args.batch, negative=args.negative,
                                seed=args.seed)
    failed = 0
    for report in reports:
        ok = report.ok(args.tol, args.fd_tol)
        failed += not ok
        print(("ok   " if ok else "FAIL ") + report.format())
    print(f"{len(reports) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_similar(args) -> int:
    from sg_jax.embeddings import Embeddings

    emb = Embeddings.load(args.vectors)
    for word, score in emb.most_similar(positive=args.words, negative=args.negative or (), k=args.k,
                                        restrict_vocab=args.restrict_vocab):
        bar = "#" * max(0, round(score * 30))
        print(f"{word:>20} {score:7.4f} {bar}")
    return 0


def cmd_analogy(args) -> int:
    from sg_jax.embeddings import Embeddings

    emb = Embeddings.load(args.vectors)
    for word, score in emb.analogy(args.a, args.b, args.c, k=args.k, method=args.method,
                                   restrict_vocab=args.restrict_vocab):
        print(f"{args.a} : {args.b} :: {args.c} : {word}  ({score:.4f})")
    return 0


def cmd_eval(args) -> int:
    from sg_jax.evaluation import evaluate_analogies, evaluate_similarity, format_table
    from sg_jax.embeddings import Embeddings

    emb = Embeddings.load(args.vectors)
    sim = evaluate_similarity(emb, args.similarity) if args.similarity else evaluate_similarity(emb)
    ana = evaluate_analogies(emb, args.analogies, restrict_vocab=args.restrict_vocab, method=args.method) \
        if args.analogies else evaluate_analogies(emb, restrict_vocab=args.restrict_vocab, method=args.method)
    print(format_table([sim, ana]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sg-jax", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train embeddings on a corpus", description="Train word embeddings and write "
                       "DIR/vectors.txt (word2vec text format), a checkpoint and a metrics log.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--dim", type=int, default=100, help="embedding dimension N (default 100)")
    p.add_argument("--window", type=int, default=5, help="max context offset (default 5)")
    add_training_arguments(p)
    g = p.add_argument_group("output")
    g.add_argument("--binary", action="store_true", help="also write DIR/vectors.bin (word2vec binary format)")
    g.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.sgjax if it exists")
    g.add_argument("--stop-after-epoch", type=_positive_int, default=None,
                   help="stop after this epoch (resume later with --resume; the schedule spans --epochs)")
    g.add_argument("--checkpoint-every-steps", type=_positive_int, default=None, help="checkpoint interval in steps")
    g.add_argument("--checkpoint-every-seconds", type=float, default=600.0, help="checkpoint interval in seconds")
    g.add_argument("--show", default=None, help="comma-separated words whose neighbours to print at the end")
    g.add_argument("-k", type=_positive_int, default=8, help="neighbours to print (default 8)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("gradcheck", help="check the hand-derived gradients against jax.grad",
                       description="Compare the closed-form gradients with jax.grad and central finite "
                       "differences on random float64 problems; exit 1 if any disagree.")
    p.add_argument("--objective", default="all", choices=["all", "softmax", "ns", "hs"])
    p.add_argument("--arch", default="all", choices=["all", "sg", "cbow"])
    p.add_argument("--vocab-size", type=_positive_int, default=11)
    p.add_argument("--dim", type=_positive_int, default=5)
    p.add_argument("--contexts", type=_positive_int, default=4, help="context slots per target (C)")
    p.add_argument("--batch", type=_positive_int, default=3, help="targets per problem")
    p.add_argument("--negative", type=_positive_int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=1e-8, help="max relative error, derivation vs jax.grad")
    p.add_argument("--fd-tol", type=float, default=1e-5, help="max relative error, finite differences vs jax.grad")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("similar", help="nearest neighbours of a word (or of a sum of words)")
    p.add_argument("words", nargs="+", help="word(s) whose unit vectors are summed")
    p.add_argument("--vectors", required=True, help="word2vec text or binary file")
    p.add_argument("--negative", nargs="*", help="words to subtract")
    p.add_argument("-k", type=_positive_int, default=10)
    p.add_argument("--restrict-vocab", type=_positive_int, default=None, help="search only the first N words")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("analogy", help="a : b :: c : ?")
    p.add_argument("a"), p.add_argument("b"), p.add_argument("c")
    p.add_argument("--vectors", required=True, help="word2vec text or binary file")
    p.add_argument("--method", choices=["add", "mul"], default="add", help="3CosAdd or 3CosMul")
    p.add_argument("-k", type=_positive_int, default=5)
    p.add_argument("--restrict-vocab", type=_positive_int, default=None)
    p.set_defaults(func=cmd_analogy)

    p = sub.add_parser("eval", help="WordSim-353 and Google analogy scores of a vectors file")
    p.add_argument("--vectors", required=True, help="word2vec text or binary file")
    p.add_argument("--similarity", default=None, help="a word-pair similarity file (default: bundled WordSim-353)")
    p.add_argument("--analogies", default=None, help="an analogy file (default: bundled Google analogies)")
    p.add_argument("--restrict-vocab", type=_positive_int, default=300_000)
    p.add_argument("--method", choices=["add", "mul"], default="add")
    p.set_defaults(func=cmd_eval)

    from sg_jax.study import command as sweep_command

    p = sub.add_parser("sweep", help="window x dimension study: runs, table, heatmaps, report")
    sweep_command.add_arguments(p)
    p.set_defaults(func=sweep_command.main)

    from sg_jax.graph import command as graph_command

    p = sub.add_parser("graph", help="DeepWalk / node2vec: walks on the device, skip-gram on the walks")
    graph_command.add_arguments(p)
    p.set_defaults(func=graph_command.main)
    p = sub.add_parser("graph-study", help="node2vec over a grid of p, q and walk length: table and heatmaps")
    graph_command.add_study_arguments(p)
    p.set_defaults(func=graph_command.study_main)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SgJaxError as e:
        print(f"sg-jax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sg-jax: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"sg-jax: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as e:
        detail = _out_of_memory(e)
        if detail is None:
            raise
        print(f"sg-jax: error: out of memory ({detail}); the model or a batch is too large: "
              "lower --dim, --batch-size or --max-vocab", file=sys.stderr)
        return 2


def _out_of_memory(e: Exception) -> str | None:
    """A one-line description if `e` is a host or device out-of-memory error, else None."""
    if isinstance(e, MemoryError):
        return str(e).strip().splitlines()[0] if str(e).strip() else "MemoryError"
    text = str(e).strip()
    if type(e).__name__ in ("JaxRuntimeError", "XlaRuntimeError") and text.startswith("RESOURCE_EXHAUSTED"):
        first = text.splitlines()[0].removeprefix("RESOURCE_EXHAUSTED:").strip().rstrip(".")
        return first or "RESOURCE_EXHAUSTED"
    return None


if __name__ == "__main__":
    sys.exit(main())
