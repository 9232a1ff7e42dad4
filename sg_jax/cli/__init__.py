"""The `sg-jax` command line: argument parsing and messages only; the work is the library's.

Every error a user can cause ends in one line on stderr, `sg-jax: error: ...`, and exit status 2;
no output file is left half-written (all outputs are written atomically). The options of `train`
and `sweep` are generated from `sg_jax.config.Config` (see `sg_jax.cli.options`).
"""

from __future__ import annotations

import argparse
import sys

from sg_jax.version import __version__
from sg_jax.cli.options import add_config_arguments, config_from_args, config_to_argv  # noqa: F401 (public)
from sg_jax.console import INTERRUPTED, OneLineParser, QuietStdout, exit_now
import sg_jax.interrupts as interrupts
from sg_jax.errors import SgJaxError
from sg_jax.mesh import check_xla_flags, host_device_flags
from sg_jax.processes.supervisor import child_setup

DESCRIPTION = """\
Skip-gram and CBOW word embeddings (word2vec) in JAX.

  sg-jax train --corpus default --out runs/brown      train, write vectors + checkpoint
  sg-jax encode big.txt --out big.enc                  read a corpus once (train --corpus big.enc)
  sg-jax similar king --vectors runs/brown/vectors.txt nearest neighbours
  sg-jax analogy man king woman --vectors ...          man : king :: woman : ?
  sg-jax eval --vectors runs/brown/vectors.txt         WordSim-353 and Google analogies
  sg-jax gradcheck                                     every objective's gradients checked
  sg-jax sweep --out runs/sweep                        window x dimension study
  sg-jax graph --edges karate --out runs/karate        DeepWalk / node2vec node embeddings
"""


def build_parser() -> argparse.ArgumentParser:
    # JAX must not start yet: the commands import JAX, and `main` sets XLA_FLAGS before it builds the parser
    from sg_jax.cli import commands, sweep

    parser = OneLineParser(prog="sg-jax", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sg-jax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_train(sub)
    commands.add_encode(sub)
    commands.add_gradcheck(sub)
    commands.add_queries(sub)
    p = sub.add_parser("sweep", help="window x dimension study: runs, table, heatmaps, report")
    sweep.add_arguments(p)
    p.set_defaults(func=sweep.main)
    from sg_jax.graph import command as graph_command  # JAX must not start yet (as above)

    p = sub.add_parser("graph", help="DeepWalk / node2vec: walks on the device, skip-gram on the walks")
    graph_command.add_arguments(p)
    p.set_defaults(func=graph_command.main)
    p = sub.add_parser("graph-study", help="node2vec over a grid of p, q and walk length: table and heatmaps")
    graph_command.add_study_arguments(p)
    p.set_defaults(func=graph_command.study_main)
    return parser


def _flag_text(argv, name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _requested_devices(argv) -> int | None:
    """Devices this process should make, read before JAX starts: --devices (default 1, and all for
    a sweep; None for 'all': one per core), split over the processes of a multi-process run."""
    text = _flag_text(argv, "--devices")
    default = None if argv[:1] == ["sweep"] else 1  # a study spreads its runs over every core
    try:
        devices = default if text is None else None if text.lower() in ("all", "none") else max(1, int(text))
        processes = max(1, int(_flag_text(argv, "--num-processes") or 1))
    except ValueError:
        return 1  # the parser will refuse it
    return None if devices is None else max(1, devices // processes)


def main(argv=None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]) and return the exit status.

    Called as the program (argv None), an interrupt ends the process at once with status 130
    (`console.exit_now`: tearing JAX down while it compiles in the background crashes). A reader
    of stdout that goes away does not change the work or the exit status (`QuietStdout`).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    child = child_setup() is not None  # a training process started by the supervisor of a multi-process run
    try:
        host_device_flags(_requested_devices(args_list))  # on a CPU, cores become devices (before JAX starts)
        if not child:  # (its supervisor has checked them)
            check_xla_flags()  # XLA ends the process over a flag it does not know: refuse it first
    except SgJaxError as e:
        print(f"sg-jax: error: {e}", file=sys.stderr)
        return 2
    if argv is None:  # the command itself, not a call from Python: a Ctrl-C is never swallowed
        interrupts.install()
    stdout = sys.stdout
    if stdout is not None:
        sys.stdout = QuietStdout(stdout)
    try:
        try:
            code = _main(args_list)
            if sys.stdout is not None:
                sys.stdout.flush()  # a closed pipe shows here, while it can still be discarded
        except KeyboardInterrupt:  # outside a command (while parsing, importing, flushing)
            print("sg-jax: interrupted", file=sys.stderr)
            code = INTERRUPTED
        if (code == INTERRUPTED or (child and code)) and argv is None:
            exit_now(code)  # (a failed child skips jax.distributed's exit barrier: its peers may never reach it)
        return code
    finally:
        sys.stdout = stdout


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = [str(a) for a in argv]  # a supervised multi-process run starts the same command again
    try:
        return args.func(args)
    except SgJaxError as e:
        print(f"sg-jax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sg-jax: interrupted", file=sys.stderr)
        return INTERRUPTED
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
