"""The study's results file: runs.jsonl, one JSON object per finished run, and its reading.

A run is recorded only once it is complete (one line, one write on an O_APPEND descriptor, then
fsync), so a study resumes by skipping the runs already recorded. A directory holds one study:
every run in it shares the corpus, the training settings other than the grid fields, and the
evaluation settings.
"""

from __future__ import annotations

import math
import os
import json
from pathlib import Path
from typing import Callable

from sg_jax.atomic import atomic_write_bytes
from sg_jax.errors import ConfigError, FormatError


SCHEMA_VERSION = 2  # 2: per-item benchmark data (wordsim353.items, analogy.items)


RUNS_FILE = "runs.jsonl"


GRID_FIELDS = ("window", "dim", "seed")


def run_id(window: int, dim: int, seed: int) -> str:
    return f"w{window}_d{dim}_s{seed}"


def read_runs(path: str | os.PathLike, *, repair: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """The records of a runs.jsonl file ([] when it does not exist).

    A last line that is not a complete JSON object (a crash while it was written) is dropped,
    and with `repair` the file is rewritten atomically without it. A bad line anywhere else
    means the file was edited or damaged otherwise: FormatError naming the line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    records, kept, dropped = [], [], None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict) or "run_id" not in record:
                raise ValueError("not a run record")
        except (ValueError, UnicodeDecodeError):
            if number == len(lines):
                dropped = raw
                break
            raise FormatError(f"{path} line {number}: not a run record; the results file is damaged "
                              f"(remove the line to rerun that run)") from None
        records.append(record)
        kept.append(raw)
    if dropped is not None or (data and not data.endswith(b"\n")):
        if dropped is not None:
            log(f"{path}: dropped a half-written last line ({len(dropped)} bytes) left by an interrupted run")
        if repair:  # the complete lines byte for byte, each ended by a newline
            atomic_write_bytes(path, b"".join(raw + b"\n" for raw in kept))
    return records


def append_run(path: str | os.PathLike, record: dict) -> None:
    """Append one record as one line: a single write on an O_APPEND descriptor, then fsync."""
    line = (_dumps(record) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean(value):
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dumps(record: dict) -> str:
    return json.dumps(_clean(record), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def study_settings(record: dict) -> dict:
    """What every run of one study shares: everything but the grid, the code and the results."""
    config = {k: v for k, v in record["config"].items() if k not in GRID_FIELDS}
    corpus = {k: record["corpus"].get(k) for k in ("fingerprint", "lowercase", "encoding_errors")}
    return {"config": config, "corpus": corpus, "evaluation": record["evaluation"]}


def _check_same_study(out: Path, records: list[dict], settings: dict) -> None:
    for record in records:
        theirs = study_settings(record)
        if theirs == settings:
            continue
        diffs = []
        for section in settings:
            for key in sorted(set(settings[section]) | set(theirs[section])):
                if settings[section].get(key) != theirs[section].get(key):
                    diffs.append(f"{key}={theirs[section].get(key)!r} (now {settings[section].get(key)!r})")
        raise ConfigError(f"{out} holds runs of a different study ({', '.join(diffs)}); "
                          f"choose another --out or remove {out / RUNS_FILE}")


def _first_of_each(records: list[dict], log: Callable[[str], None]) -> list[dict]:
    """Records with distinct run ids (two sweeps run at once into one directory can both finish
    a run; the first record counts)."""
    seen, unique = set(), []
    for r in records:
        if r["run_id"] in seen:
            log(f"ignoring a second record of run {r['run_id']}")
            continue
        seen.add(r["run_id"])
        unique.append(r)
    return unique
