"""The files of a run directory: their names, the metrics log, the manifest that ties them together,
and what can be decided from the directory alone, before a corpus is read.

    DIR/vectors.txt, DIR/vectors.bin   the vectors (written at the end)
    DIR/metrics.jsonl                  one JSON object per jitted call, appended as the call completes
    DIR/config.json                    the run's configuration
    DIR/checkpoint.sgjax               the full training state (`sg_jax.runs.save_train_checkpoint`)
    DIR/run.json                       written last: the run's id and the sha256 of every file above

The metrics log is the one file that grows during a run: a run that is killed leaves the records
of the calls it completed. A checkpoint holds the records up to its position, and a resumed run
starts the log again from those (`write_metrics`), so a run interrupted and resumed ends with
exactly the records of one that was not.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sg_jax.atomic import append_line, atomic_write_text, file_sha256
from sg_jax.errors import ConfigError, FormatError

if TYPE_CHECKING:
    from sg_jax.config import Config

CHECKPOINT = "checkpoint.sgjax"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
MANIFEST = "run.json"
OUTPUTS = ("vectors.txt", "vectors.bin", METRICS, CONFIG, CHECKPOINT, MANIFEST)


# ------------------------------------------------------------------------------ the metrics log


def _line(record: dict) -> str:
    return json.dumps(record) + "\n"


def write_metrics(out: Path, records: list[dict]) -> None:
    """Make DIR/metrics.jsonl hold exactly `records`, atomically: at a resume, a checkpoint's history
    (whatever a killed run appended past its checkpoint is dropped), and at the end of a run."""
    atomic_write_text(out / METRICS, "".join(map(_line, records)))


def append_metrics(out: Path, record: dict) -> None:
    """Append one call's record to DIR/metrics.jsonl as one line in one write (`atomic.append_line`):
    it is in the file when this returns, and a crash can cut short only that line."""
    out.mkdir(parents=True, exist_ok=True)
    append_line(out / METRICS, _line(record))


def read_metrics(out) -> list[dict]:
    """The records of DIR/metrics.jsonl ([] when it does not exist). A run killed in the middle of
    an append leaves its last line cut short: a last line without its newline that is not a
    complete JSON object is skipped. Any other line that is not a JSON object is a FormatError
    naming it."""
    path = Path(out) / METRICS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    unterminated = lines.pop()  # b"" when the file ends with a newline
    records = []
    for number, raw in enumerate(lines + [unterminated], start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError, RecursionError):
            if raw is unterminated:
                break  # half-written by a run that was killed
            raise FormatError(f"{path} line {number}: not a JSON object; the metrics log is damaged") from None
        records.append(record)
    return records


# ------------------------------------------------------------------------------ the directory


def out_dir_refusal(out_dir, *, resume: bool = False, overwrite: bool = False) -> str | None:
    """Why `run_training` would refuse to train into out_dir, decided from the directory alone
    (before the corpus is read), or None. Several processes agree on it before they start."""
    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        return f"output path {out} exists and is not a directory"
    if resume or overwrite:
        return None
    for name, how in ((CHECKPOINT, "resume it (--resume), "), (MANIFEST, "")):
        if (out / name).exists():
            return f"{out} already holds a run ({name}); {how}overwrite it (--overwrite) or choose another output directory"
    return None


def refuse_finished_run(out: Path) -> None:
    """ConfigError if `out` holds a run (its checkpoint or its manifest): training into it needs
    resume or overwrite."""
    message = out_dir_refusal(out)
    if message is not None:
        raise ConfigError(message)


def checkpoint_identity(out_dir) -> str | None:
    """What identifies the checkpoint in out_dir (None: it holds none): its 48-byte prefix, whose
    header checksum covers the payload's checksum, so copies of one checkpoint on several hosts
    agree and any two different checkpoints differ. Read without reading the checkpoint itself."""
    path = Path(out_dir) / CHECKPOINT
    try:
        with open(path, "rb") as f:
            return f.read(48).hex() + f":{path.stat().st_size}"
    except (FileNotFoundError, NotADirectoryError):
        return None


def remove_outputs(out: Path) -> None:
    """Remove the run files (`OUTPUTS`) from `out`, the manifest first: a half-removed run no longer
    claims to be whole. Other files are left alone."""
    for name in OUTPUTS[::-1]:
        try:
            (out / name).unlink()
        except FileNotFoundError:
            pass


def replace_run(new: Path, out: Path) -> None:
    """Put the run files of directory `new` in place of those of run directory `out`: the old
    run's files are removed first (its manifest first), then the new ones moved in (renames within
    one file system), the manifest last; other files in `out` are left alone."""
    remove_outputs(out)
    for name in OUTPUTS:
        if (new / name).exists():
            os.replace(new / name, out / name)


# ------------------------------------------------------------------------------ the manifest


def write_manifest(out: Path, config: Config, fingerprint: str) -> None:
    """DIR/run.json, last: the files of this run and their hashes."""
    files = {name: file_sha256(out / name) for name in OUTPUTS[:-1] if (out / name).exists()}
    manifest = {"run_id": uuid.uuid4().hex, "corpus_fingerprint": fingerprint, "epochs": config.epochs,
                "files": files}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def verify_manifest(out) -> list[str]:
    """The files of a run directory whose content no longer matches its manifest, and the run
    files (`OUTPUTS`) present but not listed in it: another run's left beside this one's ([] if
    the directory is whole)."""
    out = Path(out)
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise FormatError(f"{out / MANIFEST} is missing or damaged") from None
    changed = [name for name, digest in files.items() if not (out / name).exists() or file_sha256(out / name) != digest]
    unlisted = [name for name in OUTPUTS[:-1] if name not in files and (out / name).exists()]
    return changed + unlisted
