"""Where a result came from: the code's version and the devices it ran on."""

from __future__ import annotations

import datetime
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jax


def code_version() -> dict:
    """{"sg_jax": package version, "git": `git describe --always --dirty` or None}."""
    try:
        package = version("sg_jax")
    except PackageNotFoundError:
        package = None
    root = Path(__file__).resolve().parents[2]
    git = None
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=10)
        if top.returncode == 0 and Path(top.stdout.strip()).resolve() == root:
            described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True,
                                       text=True, timeout=10)
            if described.returncode == 0:
                git = described.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"sg_jax": package, "git": git}


def device_info() -> dict:
    devices = jax.devices()
    return {"platform": devices[0].platform, "kind": getattr(devices[0], "device_kind", devices[0].platform),
            "count": len(devices), "jax": jax.__version__}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
