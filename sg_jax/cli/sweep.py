"""`sg-jax sweep`: its options and its entry point."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sg_jax.cli.options import add_config_arguments, config_from_args
from sg_jax.errors import ConfigError
from sg_jax.evaluation import DEFAULT_RESTRICT_VOCAB
from sg_jax.study.records import RUNS_FILE
from sg_jax.study.report import REPORT, SUMMARY_CSV, SUMMARY_MD, outside_grid
from sg_jax.study.summary import markdown_table, summarize
from sg_jax.study.sweep import PRESETS, Sweep, run_sweep, save_missing_vectors


def _int_list(minimum: int):
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError("expected at least one number")
        low = [v for v in values if v < minimum]
        if low:
            raise argparse.ArgumentTypeError(f"every value must be >= {minimum}, got {low[0]}")
        return tuple(dict.fromkeys(values))  # in the given order, without repeats

    return parse


def _positive_int(text: str) -> int:
    return _int_list(1)(text)[0] if "," not in text else _reject(text)


def _reject(text: str):
    raise argparse.ArgumentTypeError(f"expected one whole number, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `sg-jax sweep` (and of experiments/sweep.py)."""
    d, p = PRESETS["default"], PRESETS["paper"]
    parser.description = (
        "Train one model per (window, dimension, seed), score each on WordSim-353 and the Google analogies, "
        "and write DIR/runs.jsonl, DIR/summary.csv, DIR/summary.md, heatmaps and loss curves (PNG) and "
        "DIR/report.md. Rerunning the same command skips the runs already recorded.")
    g = parser.add_argument_group("sweep")
    g.add_argument("--out", default="runs/sweep", help="output directory (default runs/sweep)")
    g.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help=f"default: windows {_csv(d.windows)}, dims {_csv(d.dims)}, seeds {_csv(d.seeds)}, "
                        f"{d.epochs} epochs (a few minutes on 2 CPU cores); paper: windows {_csv(p.windows)}, "
                        f"dims {_csv(p.dims)}, seeds {_csv(p.seeds)}, {p.epochs} epochs. Both: negative sampling "
                        f"with noise words shared per target, min_count {d.min_count}. Options given explicitly "
                        "override the preset")
    g.add_argument("--windows", type=_int_list(1), default=None, help="comma-separated window sizes")
    g.add_argument("--dims", type=_int_list(1), default=None, help="comma-separated embedding dimensions")
    g.add_argument("--seeds", type=_int_list(0), default=None,
                   help="comma-separated seeds; several give mean ± std per cell")
    g.add_argument("--restrict-vocab", type=_positive_int, default=DEFAULT_RESTRICT_VOCAB,
                   help=f"analogies search the N most frequent words (default {DEFAULT_RESTRICT_VOCAB})")
    g.add_argument("--save-vectors", action="store_true", help="also write DIR/w*_d*_s*/vectors.txt")
    g.add_argument("--together", type=_positive_int, default=None,
                   help="train up to K runs together as one compiled program, spread over the devices "
                        "(default: one per device; 1 trains one run at a time). Each run is the one-device run "
                        "of its settings, whatever K and --devices")
    g.add_argument("--data-parallel", action="store_true",
                   help="train each run data-parallel over all --devices, one run at a time: its vectors are "
                        "then those of a run on that many devices, not the one-device run's")
    g.add_argument("--quiet", action="store_true", help="no progress bars or per-run lines")
    parser.add_argument("--corpus", default="default",
                        help="a text file, 'default' (bundled Brown corpus), 'toy:groups' or 'toy:seeds'")
    add_config_arguments(parser, exclude=("window", "dim"))
    # Unset means "take it from the preset": the preset fills these in main().
    # A study uses every device by default: its runs are spread over them (see --together).
    parser.set_defaults(epochs=None, min_count=None, share_negatives=None, seed=None, devices=None)


def _csv(values) -> str:
    return ",".join(map(str, values))


def sweep_from_args(args) -> Sweep:
    preset = PRESETS[args.preset]
    if args.seed is not None and args.seeds is not None:
        raise ConfigError("give either --seed or --seeds, not both")
    seeds = args.seeds or ((args.seed,) if args.seed is not None else preset.seeds)
    for name in ("epochs", "min_count", "share_negatives"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(preset, name))
    windows = args.windows or preset.windows
    dims = args.dims or preset.dims
    base = config_from_args(args, window=windows[0], dim=dims[0], seed=seeds[0])
    return Sweep(base=base, windows=tuple(windows), dims=tuple(dims), seeds=tuple(seeds), corpus=args.corpus,
                 restrict_vocab=args.restrict_vocab, save_vectors=args.save_vectors, together=args.together,
                 data_parallel=args.data_parallel)


def main(args) -> int:
    sweep = sweep_from_args(args)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    n = len(sweep.grid())
    log(f"sweep: {len(sweep.windows)} window(s) x {len(sweep.dims)} dim(s) x {len(sweep.seeds)} seed(s) = {n} runs "
        f"of {sweep.base.arch}/{sweep.base.objective}, {sweep.base.epochs} epoch(s), into {args.out}")
    t0 = time.perf_counter()
    result = run_sweep(sweep, args.out, progress=not args.quiet, log=log)
    out = Path(args.out)
    print(f"{len(result.new)} run(s) trained, {result.skipped} already done, in {time.perf_counter() - t0:.1f} s; "
          f"{len(result.records)} recorded in {out / RUNS_FILE}")
    outside = outside_grid(result.records, sweep)
    if outside:
        shown = ", ".join(outside[:6]) + (f" and {len(outside) - 6} more" if len(outside) > 6 else "")
        print(f"{len(outside)} recorded run(s) lie outside this command's grid ({shown}), recorded by an earlier "
              f"sweep into {out}: the summary and the report include them (report.md names them)")
    if not args.quiet:
        print()
        print(markdown_table(summarize(result.records)))
    print(f"wrote {out / SUMMARY_CSV}, {out / SUMMARY_MD}, the heatmaps and loss curves, and {out / REPORT}")
    if sweep.save_vectors:
        written, missing = save_missing_vectors(out, result.records)
        if written:
            print(f"--save-vectors: wrote vectors.txt for {written} run(s) recorded before, from their checkpoints")
        message = missing_vectors_message(out, missing)
        if message:
            print(message, file=sys.stderr)
    return 0


def missing_vectors_message(out: Path, missing: list[str]) -> str | None:
    """Why --save-vectors left some runs without vectors.txt (their checkpoints are gone), or None."""
    if not missing:
        return None
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return (f"--save-vectors: {len(missing)} run(s) have no vectors.txt and no checkpoint to write it from "
            f"({shown}): their vectors cannot be written without training those runs again; rerun with "
            f"--save-vectors into a new --out, or delete their lines from {out / RUNS_FILE} and rerun this command.")
