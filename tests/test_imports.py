"""Imports inside functions only where they must be, each saying why; and the command line sets
XLA_FLAGS before anything imports JAX.

A module imports at its top. An import inside a function carries a comment, on its line or on
the line above its group of imports, naming one of the reasons in REASONS:
  "JAX must not start"   the module is on the path the command line (or the multi-process
                         supervisor) takes before it sets XLA_FLAGS, so JAX may not load yet;
  "optional dependency"  a package sg_jax does not require (gensim, scipy);
  "heavy:"               a required package that costs seconds to import, loaded only when used
                         (matplotlib, scikit-learn, networkx, tqdm);
  "import cycle"         two modules that need each other (none today).
"""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sg_jax"
REASONS = ("JAX must not start", "optional dependency", "heavy:", "import cycle")



def _comments(source: str) -> dict[int, str]:
    """The comment on each line that has one (line numbers from 1)."""
    return {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT}


def unexplained_imports(source: str) -> list[tuple[str, int, str]]:
    """(function, line, import) for each import inside a function whose lines (or the line above
    its run of imports on adjacent lines) have no comment naming one of REASONS."""
    comments = _comments(source)

    def explained(lines) -> bool:
        return any(reason in comments.get(n, "") for n in lines for reason in REASONS)

    found = []

    def visit(node, scope: list[str], in_function: bool) -> None:
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            group_start = previous_end = None  # the first and last lines of the run of adjacent imports
            for stmt in block:
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    if group_start is None or stmt.lineno != previous_end + 1:
                        group_start = stmt.lineno
                    previous_end = stmt.end_lineno
                    own = range(stmt.lineno, stmt.end_lineno + 1)
                    if in_function and not explained([*own, group_start - 1]):
                        found.append((".".join(scope), stmt.lineno, ast.unparse(stmt)))
                    continue
                group_start = None
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(stmt, [*scope, stmt.name], True)
                elif isinstance(stmt, ast.ClassDef):
                    visit(stmt, [*scope, stmt.name], in_function)
                else:
                    visit(stmt, scope, in_function)

    visit(ast.parse(source), [], False)
    return found


def test_the_checker_finds_an_unexplained_import():
    source = '''
import os


def bare():
    import json
    return json


def explained():
    import gensim  # optional dependency
    return gensim


def group():
    # heavy: scikit-learn loads only when a score is asked for
    from sklearn.metrics import f1_score
    from sklearn.cluster import KMeans

    import csv  # a comment without a reason
    return f1_score, KMeans, csv


class Holder:
    def method(self):
        if os.environ:
            try:
                import re
            except ImportError:
                import sre_compile as re
        return re
'''
    found = unexplained_imports(source)
    assert [(scope, text) for scope, _, text in found] == [
        ("bare", "import json"), ("group", "import csv"), ("Holder.method", "import re"),
        ("Holder.method", "import sre_compile as re")]


def test_every_function_local_import_says_why():
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for scope, line, text in unexplained_imports(path.read_text(encoding="utf-8")):
            unexplained.append(f"sg_jax/{rel}:{line} in {scope}: {text}")
    assert not unexplained, ("imports inside functions without a reason (move them to the top of the module, or "
                             f"say why on the line: one of {REASONS}):\n" + "\n".join(unexplained))


# Run as `python -m sg_jax` (sg_jax/__main__.py) with --devices 3 and no XLA_FLAGS: JAX's first
# import, if any, must see the host device count the command line sets.
_PROBE = """
import json, os, runpy, sys

os.environ.pop("XLA_FLAGS", None)
seen = {}


class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "jax" and "xla_flags" not in seen:
            seen["xla_flags"] = os.environ.get("XLA_FLAGS")
        return None


sys.meta_path.insert(0, Watch())
import sg_jax, sg_jax.cli, sg_jax.cli.options, sg_jax.mesh, sg_jax.processes.supervisor  # noqa: E401
seen["before_main"] = sorted(m for m in ("jax", "optax") if m in sys.modules)
sys.argv = ["sg-jax", "train", "--help", "--devices", "3"]
try:
    runpy.run_module("sg_jax", run_name="__main__", alter_sys=True)
except SystemExit as e:
    seen["exit"] = e.code
print("PROBE " + json.dumps(seen), file=sys.stderr)
"""


def test_the_command_line_sets_xla_flags_before_jax_is_imported():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=300,
                          cwd=ROOT)
    lines = [line for line in done.stderr.splitlines() if line.startswith("PROBE ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    seen = json.loads(lines[-1].removeprefix("PROBE "))
    assert seen["exit"] in (0, None)
    assert "--out" in done.stdout  # train's help was printed
    # the modules the command line imports before it sets XLA_FLAGS load neither JAX nor optax
    assert seen["before_main"] == []
    if "xla_flags" in seen:  # JAX loaded later (the parser's choices come from its registries)
        assert "--xla_force_host_platform_device_count=3" in (seen["xla_flags"] or "")
