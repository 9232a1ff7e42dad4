"""The `sg-jax` command line: argument parsing and messages only; the work is the library's.

Every error a user can cause ends in one line on stderr, `sg-jax: error: ...`, and exit status 2;
no output file is left half-written (all outputs are written atomically). The options of `train`
and `sweep` are generated from `sg_jax.config.Config` (see `sg_jax.cli.options`).
"""

from __future__ import annotations

import argparse
import sys

from sg_jax import __version__
from sg_jax.cli.options import add_config_arguments, config_from_args, config_to_argv  # noqa: F401 (public)
from sg_jax.errors import SgJaxError

DESCRIPTION = """\
Skip-gram and CBOW word embeddings (word2vec) in JAX.

  sg-jax train --corpus default --out runs/brown      train, write vectors + checkpoint
  sg-jax similar king --vectors runs/brown/vectors.txt nearest neighbours
  sg-jax analogy man king woman --vectors ...          man : king :: woman : ?
  sg-jax eval --vectors runs/brown/vectors.txt         WordSim-353 and Google analogies
  sg-jax gradcheck                                     every objective's gradients checked
  sg-jax sweep --out runs/sweep                        window x dimension study
"""


def build_parser() -> argparse.ArgumentParser:
    from sg_jax.cli import commands, sweep

    parser = argparse.ArgumentParser(prog="sg-jax", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sg-jax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_train(sub)
    commands.add_gradcheck(sub)
    commands.add_queries(sub)
    p = sub.add_parser("sweep", help="window x dimension study: runs, table, heatmaps, report")
    sweep.add_arguments(p)
    p.set_defaults(func=sweep.main)
    return parser


def _flag_value(argv, name: str) -> int | None:
    """An integer flag's value, read before JAX starts (None: not given or not a number)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith(name + "=") else \
            argv[i + 1] if arg == name and i + 1 < len(argv) else None
        if value is not None:
            try:
                return max(1, int(value))
            except ValueError:
                return None
    return None


def _requested_devices(argv) -> int | None:
    """Devices this process should make (None: one per core): --devices, split over the
    processes of a multi-process run."""
    devices, processes = _flag_value(argv, "--devices"), _flag_value(argv, "--num-processes")
    if processes is None:
        return devices
    return max(1, (devices or processes) // processes)


def main(argv=None) -> int:
    from sg_jax.mesh import host_device_flags

    argv = list(sys.argv[1:] if argv is None else argv)
    host_device_flags(_requested_devices(argv))  # on a CPU, the cores become devices (before JAX starts)
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
