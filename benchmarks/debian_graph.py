"""Build the Debian package graph used by bench_graph.py from an apt `Packages` index.

    python benchmarks/debian_graph.py [PACKAGES_FILE] [--out benchmarks/data]

Nodes: the binary packages of the index that take part in a relation; an undirected edge joins a
package and every package named in its Depends, Pre-Depends or Recommends fields (every
alternative of an `a | b` group; version constraints and architecture qualifiers dropped; names
that are only virtual packages dropped; self-references dropped). Label: the package's Section
(`contrib/` and `non-free/` prefixes removed). Without PACKAGES_FILE the index of this machine's
apt lists (Debian main, amd64) is decompressed with apt-helper.

Writes debian-bookworm.edges.gz (`a b` per line, sorted) and debian-bookworm.labels.gz
(`package<TAB>section`), gzip with a fixed mtime so that the bytes are reproducible.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import re
import subprocess
from pathlib import Path

FIELDS = ("Depends", "Pre-Depends", "Recommends")


def read_index(path: str | None) -> str:
    if path:
        return Path(path).read_text(encoding="utf-8")
    lists = sorted(glob.glob("/var/lib/apt/lists/*_main_binary-amd64_Packages*"))
    if not lists:
        raise SystemExit("no apt Packages index found: run apt-get update or give PACKAGES_FILE")
    return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", lists[0]], check=True, capture_output=True,
                          text=True).stdout


def parse(text: str) -> list[dict]:
    records = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
        if "Package" in fields:
            records.append(fields)
    return records


def build(records: list[dict]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    section = {r["Package"]: r.get("Section", "unknown").split("/")[-1] for r in records}
    edges = set()
    for r in records:
        a = r["Package"]
        for field in FIELDS:
            for group in r.get(field, "").split(","):
                for alt in group.split("|"):
                    b = re.split(r"[\s(:]", alt.strip())[0]
                    if b and b in section and b != a:
                        edges.add((min(a, b), max(a, b)))
    nodes = {x for e in edges for x in e}
    return sorted(edges), {n: section[n] for n in sorted(nodes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packages", nargs="?", default=None)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "data"))
    args = ap.parse_args()
    edges, labels = build(parse(read_index(args.packages)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, lines in (("edges", (f"{a} {b}\n" for a, b in edges)), ("labels", (f"{n}\t{s}\n" for n, s in labels.items()))):
        with open(out / f"debian-bookworm.{name}.gz", "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write("".join(lines).encode("utf-8"))
    print(f"{len(labels):,} nodes, {len(edges):,} edges, {len(set(labels.values()))} sections -> {out}")


if __name__ == "__main__":
    main()
