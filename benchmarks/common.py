"""Helpers shared by the benchmark scripts: machine description, memory readings, output.

The scripts run as `python benchmarks/<script>.py`, so this module is importable as `common`.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import statistics
import sys
from pathlib import Path


def proc_status(*fields: str) -> dict[str, int]:
    """Selected /proc/self/status fields in bytes (e.g. VmRSS, VmHWM, RssAnon, RssFile).
    Empty where /proc is not available."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in fields:
                    out[name] = int(value.split()[0]) * 1024  # the kernel reports kB
    except OSError:
        pass
    return out


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mib(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else round(n_bytes / 2**20, 1)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return sorted(f for f in flags if f.startswith(("avx", "fma")))
    except OSError:
        pass
    return []


def mem_total() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def source_state() -> dict:
    """The commit the measured library comes from, and its uncommitted changes (numbers taken
    from a modified tree must say so)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "sg_jax"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return {"sg_jax_commit": "unknown (not a git checkout)"}
    changed = [line[3:] for line in status if line.strip()]
    return {"sg_jax_commit": head, "sg_jax_uncommitted": ", ".join(changed) or "none"}


SOURCE_AT_START = source_state()  # read when a script starts, before it imports sg_jax


def machine(extra: dict | None = None) -> dict:
    """What the numbers were measured on."""
    import jax
    import numpy as np

    info = {
        "cpu": cpu_model(),
        "cpu_flags": " ".join(cpu_flags()),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": None if mem_total() is None else round(mem_total() / 2**30, 1),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": ", ".join(str(d) for d in jax.devices()),
        "numpy": np.__version__,
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(("OPENBLAS_", "XLA_", "OMP_", "MKL_", "JAX_"))},
    }
    info.update(SOURCE_AT_START)
    info.update(extra or {})
    return info


def machine_markdown(info: dict) -> str:
    lines = ["| | |", "|---|---|"]
    for k, v in info.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items()) or "(none)"
        lines.append(f"| {k} | {v} |")
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(x):
        if x is None:
            return "-"
        if isinstance(x, bool):
            return str(x)
        if isinstance(x, int):
            return f"{x:,}"
        if isinstance(x, float):
            return f"{x:,.3g}" if abs(x) < 100 else f"{x:,.0f}"
        return str(x)

    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(out)


def parse_value(text: str):
    """A --set FIELD=VALUE value: an int, a float, a boolean or the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_sets(items: list[str]) -> dict:
    """--set FIELD=VALUE options (repeatable) as a dict of Config overrides."""
    return {k: parse_value(v) for k, v in (s.split("=", 1) for s in items)}


def repeated_corpus(name: str, directory: Path) -> str | None:
    """For --corpus default-xN: the bundled Brown corpus written N times over into directory (a
    corpus of several million tokens of Brown's words, each N times as frequent, so a min_count
    keeps more of them; redistributable and built anywhere); None for any other name."""
    prefix = "default-x"
    if not (name.startswith(prefix) and name[len(prefix):].isdigit()):
        return None
    from sg_jax.data.text import DEFAULT_CORPUS_PATH

    with gzip.open(DEFAULT_CORPUS_PATH, "rt", encoding="utf-8") as f:
        text = f.read()
    path = Path(directory) / f"{name}.txt"
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(int(name[len(prefix):])):
            out.write(text if text.endswith("\n") else text + "\n")
    return str(path)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def write_outputs(out: str | os.PathLike, record: dict, markdown: str) -> tuple[Path, Path]:
    """Write `record` as JSON to `out` (suffix .json added if missing) and the Markdown beside it
    (same name, .md), each atomically."""
    from sg_jax.atomic import atomic_write_text

    path = Path(out)
    if path.suffix != ".json":
        path = path.with_name(path.name + ".json")
    md = path.with_suffix(".md")
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=False) + "\n")
    atomic_write_text(md, markdown + "\n")
    return path, md


def command_line() -> str:
    """The invocation as run from the repository root (no machine-specific paths)."""
    script = f"benchmarks/{Path(sys.argv[0]).name}"
    return " ".join(["python", script, *[a if a and " " not in a else repr(a) for a in sys.argv[1:]]])
