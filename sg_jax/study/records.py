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

from sg_jax.atomic import append_line, atomic_write_bytes
from sg_jax.config import Config
from sg_jax.errors import ConfigError, FormatError, quoted


SCHEMA_VERSION = 2  # 2: per-item benchmark data (wordsim353.items, analogy.items)


RUNS_FILE = "runs.jsonl"


GRID_FIELDS = ("window", "dim", "seed")


def run_id(window: int, dim: int, seed: int) -> str:
    return f"w{window}_d{dim}_s{seed}"


_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
# What the sweep, the summary and the report read from a record: field -> type, and for the
# sections, their fields. A record lacking one is refused on reading, not crashed on later.
REQUIRED_FIELDS = {
    "run_id": str, "window": int, "dim": int, "seed": int, "config": dict, "corpus": dict, "evaluation": dict,
    "code_version": dict, "device": dict, "loss_curve": dict, "final_loss": _OPTIONAL_NUMBER,
    "wordsim353": dict, "analogy": dict, "wall_seconds": _NUMBER, "words_per_second": _OPTIONAL_NUMBER,
}
REQUIRED_SECTION_FIELDS = {
    "config": {"arch": str, "objective": str, "negative": int, "share_negatives": str, "epochs": int,
               "min_count": int, "sample": _NUMBER, "dynamic_window": bool},
    "corpus": {"fingerprint": str},
    "evaluation": {"restrict_vocab": int, "method": str},
    "device": {"platform": str, "kind": str, "jax": str},
    "loss_curve": {"epoch": list, "loss": list},
    "wordsim353": {"spearman": _OPTIONAL_NUMBER, "n_pairs": int, "n_oov": int},
    "analogy": {"accuracy": _OPTIONAL_NUMBER, "total": int, "skipped": int},
}


def _type_name(t) -> str:
    names = {str: "a string", int: "a whole number", dict: "a JSON object", list: "a list", bool: "true or false",
             _NUMBER: "a number", _OPTIONAL_NUMBER: "a number or null"}
    return names[t]


def _is(value, t) -> bool:
    if isinstance(value, bool) and t is not bool:
        return False  # JSON true is not a number here
    return isinstance(value, t)


def check_record(record, where: str) -> dict:
    """`record` if it is a complete run record, else FormatError naming `where` and the field."""
    if not isinstance(record, dict):
        raise FormatError(f"{where}: not a run record (a JSON object)")
    for name, t in REQUIRED_FIELDS.items():
        if name not in record:
            raise FormatError(f"{where}: the run record lacks the field {name}")
        if not _is(record[name], t):
            raise FormatError(f"{where}: the field {name} is {quoted(json.dumps(record[name]))}, "
                              f"not {_type_name(t)}")
    for section, fields in REQUIRED_SECTION_FIELDS.items():
        for name, t in fields.items():
            if name not in record[section]:
                raise FormatError(f"{where}: the run record lacks the field {section}.{name}")
            if not _is(record[section][name], t):
                raise FormatError(f"{where}: the field {section}.{name} is "
                                  f"{quoted(json.dumps(record[section][name]))}, not {_type_name(t)}")
    expected = run_id(record["window"], record["dim"], record["seed"])
    if record["run_id"] != expected:
        raise FormatError(f"{where}: run_id {quoted(record['run_id'])} does not match window {record['window']}, "
                          f"dim {record['dim']}, seed {record['seed']} ({expected})")
    return record


def read_runs(path: str | os.PathLike, *, repair: bool = True, log: Callable[[str], None] | None = None,
              validate: bool = True) -> list[dict]:
    """The records of a runs.jsonl file ([] when it does not exist).

    Only a last line without its newline can be half-written (each record is appended with its
    newline in one write): if it is not a complete record it is dropped, and with `repair` the
    file is rewritten atomically without it. Any other bad line, the last complete one included
    (an edit, a comment, damage), is a FormatError naming the line. With `validate` every record
    must hold the fields the sweep and its report read (`check_record`). log: told of a dropped
    line (None: silent).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except IsADirectoryError:
        raise FormatError(f"{path} is a directory, not a results file") from None
    lines = data.split(b"\n")
    unterminated = lines.pop()  # b"" when the file ends with a newline
    records, dropped = [], None

    def parse(raw: bytes, number: int) -> dict:
        where = f"{path} line {number}"
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise FormatError(f"{where}: not a run record (not valid JSON); the results file is damaged "
                              f"(remove the line to rerun that run)") from None
        if validate:
            return check_record(record, where)
        if not isinstance(record, dict) or "run_id" not in record:
            raise FormatError(f"{where}: not a run record")
        return record

    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            records.append(parse(raw, number))
    if unterminated.strip():
        try:
            records.append(parse(unterminated, len(lines) + 1))
        except FormatError:
            dropped = unterminated
    if unterminated:
        if dropped is not None and log is not None:
            log(f"{path}: dropped a half-written last line ({len(dropped)} bytes) left by an interrupted run")
        if repair:  # the complete lines byte for byte, and a kept last line with its newline
            atomic_write_bytes(path, data[: len(data) - len(unterminated)]
                               + (b"" if dropped is not None or not unterminated.strip() else unterminated + b"\n"))
    return records


def append_run(path: str | os.PathLike, record: dict) -> None:
    """Append one record as one line: a single write on an O_APPEND descriptor, then fsync."""
    append_line(path, _dumps(record) + "\n", fsync=True)


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
    """What every run of one study shares: everything but the grid, the code and the results.

    The config as `Config.from_dict` reads it (a field added since the record was written takes
    the value runs before it had), and on one device without sync_combine, which says how several
    devices' changes combine: a one-device study continues across a change of that default (cap
    before auto)."""
    config = Config.from_dict(record["config"], where=f"the config of run {record.get('run_id')}").to_dict()
    if (config.get("devices") or 1) == 1:
        del config["sync_combine"]
    config = {k: v for k, v in config.items() if k not in GRID_FIELDS}
    corpus = {k: record["corpus"].get(k) for k in ("fingerprint", "lowercase", "encoding_errors")}
    corpus["normalize"] = record["corpus"].get("normalize", "NFC")  # records before the option: NFC
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
