"""Ready for an accelerator: words/s, peak device memory and quality against the batch size.

    python benchmarks/bench_accelerator.py --out benchmarks/results/accelerator_<date>
    python benchmarks/bench_accelerator.py --smoke --out /tmp/accelerator_smoke

Runs on whatever JAX backend is present (GPU, TPU or CPU). Each cell (a dimension and a batch of
targets) trains one epoch of the default skip-gram configuration through the public API
(`sg_jax.train_model`) in its own process, so that its peak device memory
(`memory_stats()["peak_bytes_in_use"]`, where the backend reports it) and its compilation belong
to it alone. Reported per cell:

* words/s: the epoch's in-vocabulary corpus tokens after the first jitted call, divided by the
  seconds after it (from the run's history records): the first call holds the compilation and the
  epoch's on-device preparation, and reading the corpus is not timed at all. An epoch is cut into
  several calls (steps_per_call is lowered for large batches) so that a rate after the first exists.
* the batch the step really takes: the batch asked for, rounded down to whole spans of the span
  layout. The cells train with `cap_batch=False`: by default a step holds at most as many targets
  as the vocabulary has words, which on Brown would turn every batch over its vocabulary into the
  same one.
* WordSim-353, SimLex-999 (read from gensim's test data when gensim is installed) and the Google
  analogies of the vectors; a divergence is recorded, not raised.

Then, per dimension, the largest batch that did not diverge against the reference batch (the
smallest asked for, 1,024 by default), both after the same single epoch; and the wall time of the
default study (`sg-jax sweep --corpus default`) in a subprocess.

The default corpus is the bundled Brown corpus written `--repeat` times into a temporary file
(several million tokens); `--corpus PATH` trains on another text file instead. `--budget` bounds
the whole script: cells that would start after it are skipped, a cell still running at it is
stopped, and the results say which. `--smoke` is a tiny configuration for a CPU (a slice of the
corpus, dimension 8, batches 64 and 256, no study).
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

FULL = {"dims": "100,300", "batches": "1024,4096,16384,65536", "repeat": 4, "lines": None}
SMOKE = {"dims": "8", "batches": "64,256", "repeat": 1, "lines": 3000}
MIN_CELL_S = 5.0        # a cell is not started with less time than this left
CALLS_PER_EPOCH = 8     # at least this many jitted calls per epoch, so a rate after the first exists
KEEP_GUESS = 0.6        # rough share of tokens subsampling keeps, only to size steps_per_call


# ----------------------------------------------------------------------------- one cell (a child)


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _peak_device_bytes() -> int | None:
    import jax

    try:
        stats = jax.local_devices()[0].memory_stats()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def _quality(wv) -> dict:
    from sg_jax.errors import ConfigError
    from sg_jax.evaluation import evaluate_analogies, evaluate_similarity, simlex999_path

    ws = evaluate_similarity(wv)
    out = {"wordsim353": {"spearman": _finite(ws.spearman), "pairs": ws.n_pairs}}
    try:
        simlex = evaluate_similarity(wv, simlex999_path())
        out["simlex999"] = {"spearman": _finite(simlex.spearman), "pairs": simlex.n_pairs}
    except ConfigError as e:  # gensim (whose test data holds the file) is not installed
        out["simlex999"] = {"spearman": None, "pairs": 0, "note": str(e)}
    an = evaluate_analogies(wv)
    out["analogies"] = {"accuracy": _finite(an.accuracy), "questions": an.total}
    return out


def run_cell(spec: dict) -> dict:
    """Train one epoch at spec's dim and batch; the record of the cell (never raises for a run
    that diverges or a corpus the library refuses)."""
    import sg_jax
    from sg_jax.errors import DivergenceError, SgJaxError

    out = {"dim": spec["dim"], "batch": spec["batch"], "steps_per_call": spec["steps_per_call"]}
    try:
        model = sg_jax.train_model(spec["corpus"], dim=spec["dim"], batch_size=spec["batch"], epochs=1,
                                   steps_per_call=spec["steps_per_call"], seed=spec["seed"], cap_batch=False)
    except DivergenceError as e:
        return {**out, "status": "diverged", "message": str(e), "peak_device_bytes": _peak_device_bytes()}
    except SgJaxError as e:
        return {**out, "status": "failed", "message": str(e), "peak_device_bytes": _peak_device_bytes()}
    h = model.history
    after_first = len(h) >= 2
    words = h[-1]["words"] - (h[0]["words"] if after_first else 0)
    seconds = h[-1]["seconds"] - (h[0]["seconds"] if after_first else 0.0)
    out.update(status="ok", calls=len(h), epoch_words=h[-1]["words"], timed_words=words, train_seconds=seconds,
               words_per_second=words / seconds if seconds > 0 else None, first_call_seconds=h[0]["seconds"],
               includes_first_call=not after_first, final_loss=_finite(h[-1]["loss"]),
               peak_device_bytes=_peak_device_bytes(), vocab=len(model.wv.words), devices=model.config.devices,
               effective_batch=_effective_batch(model))
    out["quality"] = _quality(model.wv)
    return out


def _effective_batch(model) -> int | None:
    """The targets a step took: the batch asked for, in whole spans (see sg_jax.step)."""
    try:
        from sg_jax.step import effective_batch_size

        return int(effective_batch_size(model.config, len(model.wv.words)))
    except (ImportError, AttributeError, TypeError):  # the library's internals moved: not reported
        return None


# ----------------------------------------------------------------------------- the parent


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def write_corpus(path: Path, repeat: int, lines: int | None) -> int:
    """The bundled Brown corpus (its first `lines` sentences) written `repeat` times to `path`;
    returns the whitespace tokens written."""
    import sg_jax

    brown = Path(sg_jax.__file__).resolve().parent / "data" / "brown.txt.gz"
    with gzip.open(brown, "rt", encoding="utf-8") as f:
        text = f.readlines()[:lines] if lines else f.readlines()
    block = "".join(line if line.endswith("\n") else line + "\n" for line in text)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(repeat):
            f.write(block)
    return repeat * sum(len(line.split()) for line in text)


def count_tokens(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return sum(len(line.split()) for line in f)


def steps_per_call(tokens: int, batch: int) -> int:
    steps = tokens * KEEP_GUESS / batch
    return int(max(1, min(64, steps // CALLS_PER_EPOCH)))


def run_bounded(argv: list[str], timeout: float) -> subprocess.CompletedProcess | None:
    """Run `argv` in its own process group; None if it was still running after `timeout` s (the
    whole group is then killed, so nothing it started keeps the device)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    except BaseException:  # interrupted: a child in its own session would not see the Ctrl-C
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def run_child(spec: dict, timeout: float) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), "--cell", json.dumps(spec)]
    t = time.monotonic()
    proc = run_bounded(argv, timeout)
    if proc is None:
        return {"dim": spec["dim"], "batch": spec["batch"], "status": "stopped",
                "message": f"at the time budget, after {time.monotonic() - t:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:  # e.g. out of device memory: its last line says why
        err = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return {"dim": spec["dim"], "batch": spec["batch"], "status": "failed",
                "message": f"exit code {proc.returncode}: {err[:300]}"}
    record = json.loads(lines[-1])
    record["process_seconds"] = round(time.monotonic() - t, 2)
    return record


def compare_quality(cells: list[dict], dims: list[int], reference: int) -> list[dict]:
    """Per dim: the largest batch that trained (did not diverge) against the reference batch."""
    out = []
    for dim in dims:
        ref = next((c for c in cells if c["dim"] == dim and c["batch"] == reference), None)
        ok = [c for c in cells if c["dim"] == dim and c.get("status") == "ok"]
        largest = max(ok, key=lambda c: c["batch"], default=None)
        row = {"dim": dim, "reference_batch": reference, "largest_stable_batch": largest and largest["batch"],
               "diverged_batches": [c["batch"] for c in cells if c["dim"] == dim and c.get("status") == "diverged"]}
        if ref is None or ref.get("status") != "ok":
            row["note"] = f"the reference batch {reference} did not train ({(ref or {}).get('status', 'not run')})"
        elif largest is not None:
            row["reference"], row["largest"] = ref["quality"], largest["quality"]
            row["difference"] = {
                name: _diff(largest["quality"][name].get(key), ref["quality"][name].get(key), ratio)
                for name, key, ratio in (("wordsim353", "spearman", False), ("simlex999", "spearman", False),
                                         ("analogies", "accuracy", True))}
        out.append(row)
    return out


def _diff(a, b, ratio: bool):
    if a is None or b is None:
        return None
    if ratio:
        return {"ratio": a / b if b else None}
    return {"delta": a - b}


def run_study(timeout: float, workdir: Path) -> dict:
    argv = [sys.executable, "-m", "sg_jax", "sweep", "--corpus", "default", "--out", str(workdir / "study")]
    command = "sg-jax sweep --corpus default --out TMP"
    t = time.monotonic()
    proc = run_bounded(argv, timeout)
    if proc is None:
        return {"status": "stopped", "command": command, "wall_seconds": round(time.monotonic() - t, 1),
                "message": f"not finished at the time budget ({timeout:.0f} s): the study takes longer"}
    wall = round(time.monotonic() - t, 1)
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return {"status": "failed", "command": command, "wall_seconds": wall,
                "message": f"exit code {proc.returncode}: {err[:300]}"}
    return {"status": "ok", "command": command, "wall_seconds": wall}


# ----------------------------------------------------------------------------- the report


def _num(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def render(record: dict) -> str:
    s = record["settings"]
    lines = [f"# Accelerator readiness: words/s, device memory and quality against the batch"
             f"{' (smoke)' if s['smoke'] else ''}", "",
             f"`{record['command']}`", "",
             f"Backend **{record['machine']['jax_backend']}** ({record['machine']['jax_devices']}). "
             f"Corpus: {s['corpus']} ({s['tokens']:,} whitespace tokens); 1 epoch per cell, seed {s['seed']}, "
             f"every other option at its default. words/s: in-vocabulary tokens after the first jitted call "
             f"(compilation) over the seconds after it; reading the corpus is not timed.", "",
             "| dim | batch | step's batch | status | words/s | train s | first call s | peak device MiB | "
             "WordSim-353 | SimLex-999 | analogies |", "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in record["cells"]:
        q = c.get("quality", {})
        peak = c.get("peak_device_bytes")
        status = c["status"] if c["status"] == "ok" else f"{c['status']}: {c.get('message', '')[:160]}"
        if c.get("includes_first_call"):
            status += " (one call: rate includes compilation)"
        lines.append(
            f"| {c['dim']} | {c['batch']:,} | {_num(c.get('effective_batch'), ',')} | {status} | "
            f"{_num(c.get('words_per_second'), ',.0f')} | {_num(c.get('train_seconds'), '.2f')} | "
            f"{_num(c.get('first_call_seconds'), '.2f')} | "
            f"{'n/a' if peak is None and 'peak_device_bytes' in c else _num(common.mib(peak), ',.1f')} | "
            f"{_num(q.get('wordsim353', {}).get('spearman'), '.3f')} | "
            f"{_num(q.get('simlex999', {}).get('spearman'), '.3f')} | "
            f"{_pct(q.get('analogies', {}).get('accuracy'))} |")
    lines += ["", "## Quality: the largest batch that trained against the reference batch (same epochs)", "",
              "| dim | reference batch | largest stable batch | diverged | WordSim-353 Δ | SimLex-999 Δ | "
              "analogies ratio |", "|---:|---:|---:|---|---:|---:|---:|"]
    for q in record["quality"]:
        d = q.get("difference") or {}
        lines.append(f"| {q['dim']} | {q['reference_batch']:,} | {_num(q['largest_stable_batch'], ',')} | "
                     f"{', '.join(f'{b:,}' for b in q['diverged_batches']) or 'none'} | "
                     f"{_num((d.get('wordsim353') or {}).get('delta'), '+.3f')} | "
                     f"{_num((d.get('simlex999') or {}).get('delta'), '+.3f')} | "
                     f"{_num((d.get('analogies') or {}).get('ratio'), '.2f')}"
                     f"{' ' + q['note'] if 'note' in q else ''} |")
    st = record["study"]
    lines += ["", "## The default study", "",
              f"`{st.get('command', 'sg-jax sweep --corpus default')}`: {st['status']}"
              + (f", {st['wall_seconds']:.1f} s wall" if st.get("wall_seconds") is not None else "")
              + (f" ({st['message']})" if st.get("message") else ""), "",
              "## Time budget", "", _budget_line(record["budget"]), "", "## Machine", "",
              common.machine_markdown(record["machine"])]
    return "\n".join(lines)


def _budget_line(b: dict) -> str:
    line = f"{b['elapsed_seconds']:.0f} s of the {b['budget_seconds']:.0f} s budget used"
    if b["skipped"]:
        line += "; skipped at the budget: " + ", ".join(b["skipped"])
    return line + "."


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", help="a text file to train on (default: the bundled Brown corpus, --repeat times)")
    p.add_argument("--repeat", type=int, help=f"copies of the Brown corpus (default {FULL['repeat']})")
    p.add_argument("--lines", type=int, help="only the first N sentences of the Brown corpus")
    p.add_argument("--dims", help=f"comma-separated dimensions (default {FULL['dims']})")
    p.add_argument("--batches", help=f"comma-separated batches of targets (default {FULL['batches']}); the "
                   "smallest is the quality reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=480.0, help="seconds for the whole script (default 480)")
    p.add_argument("--study-reserve", type=float, default=180.0,
                   help="seconds of the budget kept for the default study (default 180, at most 40%% of the budget)")
    p.add_argument("--no-study", action="store_true", help="skip the default study")
    p.add_argument("--smoke", action="store_true",
                   help=f"tiny: the first {SMOKE['lines']} sentences, dims {SMOKE['dims']}, batches "
                        f"{SMOKE['batches']}, no study")
    p.add_argument("--out", help="write OUT.json and OUT.md (default benchmarks/results/accelerator_<date>)")
    p.add_argument("--cell", help=argparse.SUPPRESS)  # internal: run one cell, print its record
    args = p.parse_args(argv)
    if args.cell:
        print(json.dumps(run_cell(json.loads(args.cell))), flush=True)
        return 0
    t0 = time.monotonic()
    preset = SMOKE if args.smoke else FULL
    try:
        dims, batches = _ints(args.dims or preset["dims"]), sorted(set(_ints(args.batches or preset["batches"])))
    except ValueError:
        p.error("--dims and --batches take comma-separated positive integers")
    repeat = args.repeat if args.repeat is not None else preset["repeat"]
    lines = args.lines if args.lines is not None else preset["lines"]
    study = not (args.no_study or args.smoke)
    if not dims or not batches or min(dims + batches) < 1 or repeat < 1:
        p.error("--dims, --batches and --repeat take positive integers")
    if args.corpus and not Path(args.corpus).is_file():
        p.error(f"corpus file {args.corpus} does not exist")
    out = args.out or f"benchmarks/results/accelerator_{datetime.datetime.now(datetime.UTC):%Y-%m-%d}"
    reserve = min(args.study_reserve, 0.4 * args.budget) if study else 0.0  # a short budget still runs cells

    with tempfile.TemporaryDirectory(prefix="sg_jax_accel_") as tmp:
        workdir = Path(tmp)
        if args.corpus:
            corpus, tokens, described = Path(args.corpus), count_tokens(Path(args.corpus)), Path(args.corpus).name
        else:
            corpus = workdir / "corpus.txt"
            tokens = write_corpus(corpus, repeat, lines)
            described = (f"the bundled Brown corpus{f' (first {lines:,} sentences)' if lines else ''}"
                         f" x {repeat}")
        cells, skipped = [], []
        for dim in dims:
            for batch in batches:
                left = args.budget - reserve - (time.monotonic() - t0)
                if left < MIN_CELL_S:
                    cells.append({"dim": dim, "batch": batch, "status": "skipped", "message": "time budget"})
                    skipped.append(f"dim {dim} batch {batch}")
                    continue
                spec = {"corpus": str(corpus), "dim": dim, "batch": batch, "seed": args.seed,
                        "steps_per_call": steps_per_call(tokens, batch)}
                cells.append(run_child(spec, timeout=left))
                if cells[-1]["status"] == "stopped":
                    skipped.append(f"dim {dim} batch {batch} (stopped while running)")
                print(json.dumps({k: v for k, v in cells[-1].items() if k != "quality"}), flush=True)
        if not study:
            study_record = {"status": "skipped", "message": "--smoke" if args.smoke else "--no-study"}
        elif (left := args.budget - (time.monotonic() - t0)) < MIN_CELL_S:
            study_record = {"status": "skipped", "message": "time budget"}
            skipped.append("the default study")
        else:
            study_record = run_study(left, workdir)
    record = {
        "command": common.command_line(),
        "settings": {"smoke": args.smoke, "corpus": described, "tokens": tokens, "dims": dims, "batches": batches,
                     "epochs": 1, "seed": args.seed, "reference_batch": batches[0]},
        "cells": cells,
        "quality": compare_quality(cells, dims, batches[0]),
        "study": study_record,
        "budget": {"budget_seconds": args.budget, "study_reserve_seconds": reserve,
                   "elapsed_seconds": round(time.monotonic() - t0, 1), "exceeded": bool(skipped),
                   "skipped": skipped},
    }
    record["machine"] = common.machine()  # JAX starts in this process only now: the device stays free till here
    markdown = render(record)
    print(markdown)
    common.write_outputs(out, record, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
