"""sg_jax's DeepWalk / node2vec against PecanPy + gensim (what users run today), in one run.

Both sides get the same edge-list file (plain text), the same walk settings (walks of
--walk-length nodes: PecanPy counts steps, so it is given walk_length - 1), the same skip-gram
settings (PecanPy's own call: gensim Word2Vec(walks, vector_size, window, min_count=0, sg=1,
workers, epochs, seed), i.e. gensim's defaults sample=1e-3, negative=5, alpha=0.025, which are
sg_jax's graph defaults too), and the same scorer (sg_jax.graph.evaluate.node_classification: one-vs-
rest logistic regression on unit vectors, stratified 50/50 split, same split seed). Each side runs
in a fresh subprocess, so peak memory (VmHWM) and compilation (numba for PecanPy, XLA for sg_jax)
belong to it alone, and the two alternate when --repeats > 1.

Rows report load s (reading the edge list into each side's graph), walk s (PecanPy's
simulate_walks, numba compilation included as a user meets it; sg_jax's walks on the device, XLA
compilation included), train s, job s (load + walks + training, what the issue's target compares),
walk steps/s, a second, warm call of the walks (compiled code), peak MiB, micro-/macro-F1.

    python benchmarks/bench_graph.py --out benchmarks/results/graph_debian            # the Debian graph
    python benchmarks/bench_graph.py --graph sbm60k --out benchmarks/results/graph_sbm60k
    python benchmarks/bench_graph.py --throughput --out benchmarks/results/graph_throughput

Graphs: `debian` (benchmarks/data/debian-bookworm.*.gz: 59,076 Debian packages, 274,950
dependency edges, labels = the 58 archive sections; see benchmarks/README.md), `sbm60k` (a
generated planted partition of the same size, 50 blocks), `karate`, or a path (--labels for labels).
--throughput generates a 1M-node, 10M-edge planted-partition graph and measures walk steps/s only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent


def peak_mib() -> float | None:
    return common.mib(common.proc_status("VmHWM").get("VmHWM"))


def read_labels_file(path) -> dict[str, str]:
    labels = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                labels[parts[0]] = parts[1]
    return labels


def score(names, vectors, labels, seed) -> dict:
    from sg_jax.graph.evaluate import node_classification

    c = node_classification(names, vectors, labels, seed=seed, n_jobs=2)
    return {"micro_f1": round(c.micro_f1, 4), "macro_f1": round(c.macro_f1, 4), "classes": c.n_classes,
            "test_nodes": c.n_test}


# ---------------------------------------------------------------------------------------------
# children: one side each


def child_pecanpy(a) -> dict:
    import numpy as np
    from gensim.models import Word2Vec

    # PecanPy 2.0.9 imports nptyping 2.0, which names numpy 1 aliases that numpy 2 removed: restore them
    for alias, target in (("bool8", "bool_"), ("object0", "object_"), ("int0", "intp"), ("uint0", "uintp"),
                          ("float_", "float64"), ("complex_", "complex128"), ("str0", "str_"), ("bytes0", "bytes_"),
                          ("void0", "void"), ("longfloat", "longdouble"), ("unicode_", "str_"),
                          ("singlecomplex", "complex64"), ("longcomplex", "clongdouble"), ("string_", "bytes_"),
                          ("clongfloat", "clongdouble"), ("cfloat", "complex128")):
        if not hasattr(np, alias):
            setattr(np, alias, getattr(np, target))
    from pecanpy import pecanpy as pp

    t0 = time.perf_counter()
    kind = pp.SparseOTF
    g = kind(p=a.p, q=a.q, workers=a.workers, verbose=False, random_state=a.seed)
    g.read_edg(a.edges, weighted=False, directed=False, delimiter=" ")
    t1 = time.perf_counter()
    walks = g.simulate_walks(num_walks=a.walks, walk_length=a.walk_length - 1)
    t2 = time.perf_counter()
    model = Word2Vec(walks, vector_size=a.dim, window=a.window, min_count=0, sg=1, workers=a.workers,
                     epochs=a.epochs, seed=a.seed)
    t3 = time.perf_counter()
    peak = peak_mib()
    tokens = sum(len(w) for w in walks)
    steps = tokens - len(walks)
    del walks
    t4 = time.perf_counter()
    warm = g.simulate_walks(num_walks=a.walks, walk_length=a.walk_length - 1)
    warm_s = time.perf_counter() - t4
    del warm
    out = {"load_s": t1 - t0, "walk_s": t2 - t1, "train_s": t3 - t2, "job_s": t3 - t0, "peak_mib": peak,
           "walk_tokens": tokens, "walk_steps": steps, "walk_steps_per_s": steps / (t2 - t1),
           "warm_walk_s": warm_s, "warm_steps_per_s": steps / warm_s}
    if a.labels:
        names = list(model.wv.index_to_key)
        out.update(score(names, np.asarray(model.wv.vectors), read_labels_file(a.labels), a.seed))
    return out


def child_sg_jax(a) -> dict:
    import dataclasses

    from sg_jax.graph.csr import build_csr
    from sg_jax.graph.edgelist import read_edgelist
    from sg_jax.graph.embed import embed_graph, graph_config
    from sg_jax.graph.walks import WalkConfig, generate_walks

    t0 = time.perf_counter()
    graph = read_edgelist(a.edges)
    t1 = time.perf_counter()
    walk = WalkConfig("node2vec", p=a.p, q=a.q, walks=a.walks, walk_length=a.walk_length)
    config = graph_config(dim=a.dim, window=a.window, epochs=a.epochs, seed=a.seed, **common.parse_sets(a.set))
    with tempfile.TemporaryDirectory() as tmp:
        res = embed_graph(graph, walk, config, Path(tmp) / "run", progress=False, checkpoint=None, log=lambda s: None)
        t2 = time.perf_counter()
        peak = peak_mib()
    w = res.walks
    t3 = time.perf_counter()
    warm = generate_walks(build_csr(graph), graph.names, walk, a.seed)
    warm_s = time.perf_counter() - t3
    out = {"load_s": t1 - t0, "walk_s": w.seconds, "train_s": res.run.result.seconds, "job_s": t2 - t0,
           "peak_mib": peak, "walk_tokens": int(w.encoded.n_tokens), "walk_steps": w.steps,
           "walk_steps_per_s": w.steps / w.seconds, "warm_walk_s": warm_s, "warm_steps_per_s": warm.steps / warm_s,
           "other_s": (t2 - t0) - (t1 - t0) - w.seconds - res.run.result.seconds,
           "walk_config": dataclasses.asdict(walk)}
    if a.labels:
        out.update(score(res.run.vocab.words, res.run.result.vectors(), read_labels_file(a.labels), a.seed))
    return out


def child_throughput(a) -> dict:
    from sg_jax.graph.csr import build_csr
    from sg_jax.graph.datasets import planted_partition
    from sg_jax.graph.walks import WalkConfig, generate_walks

    t0 = time.perf_counter()
    graph, _ = planted_partition(a.nodes, a.edges_m, communities=100, seed=a.seed)
    csr = build_csr(graph)
    gen_s = time.perf_counter() - t0
    rows = []
    for method, p, q in (("deepwalk", 1.0, 1.0), ("node2vec", 0.5, 2.0)):
        walk = WalkConfig(method, p=p, q=q, walks=1, walk_length=a.walk_length)
        cold = generate_walks(csr, graph.names, walk, a.seed)
        warm = generate_walks(csr, graph.names, walk, a.seed + 1)
        rows.append({"method": method, "p": p, "q": q, "walks": graph.n_nodes, "walk_length": a.walk_length,
                     "steps": warm.steps, "cold_s": cold.seconds, "warm_s": warm.seconds,
                     "cold_steps_per_s": cold.steps / cold.seconds, "warm_steps_per_s": warm.steps / warm.seconds})
        del cold, warm
    return {"nodes": graph.n_nodes, "edges": graph.n_edges, "max_degree": csr.max_degree,
            "isolated": int((csr.out_degree() == 0).sum()), "generate_s": gen_s, "rows": rows, "peak_mib": peak_mib()}


# ---------------------------------------------------------------------------------------------
# the parent


def prepare(graph: str, labels: str | None, tmp: Path) -> tuple[str, str | None, str]:
    """A plain-text edge list (PecanPy reads no gzip) and labels for the chosen graph."""
    if graph == "debian":
        edges, labels, desc = HERE / "data" / "debian-bookworm.edges.gz", HERE / "data" / "debian-bookworm.labels.gz", \
            "Debian 12 package dependency graph (benchmarks/data/debian-bookworm)"
    elif graph == "sbm60k":
        from sg_jax.graph.datasets import planted_partition

        g, lab = planted_partition(59_076, 290_000, communities=50, mu=0.3, seed=0)
        plain = tmp / "sbm60k.edges"
        with open(plain, "w") as f:
            f.writelines(f"{g.names[s]} {g.names[d]}\n" for s, d in zip(g.src.tolist(), g.dst.tolist()))
        with open(tmp / "sbm60k.labels", "w") as f:
            f.writelines(f"{n}\t{lab[n]}\n" for n in g.names)
        return str(plain), str(tmp / "sbm60k.labels"), (f"generated planted partition, {g.n_nodes:,} nodes, "
                                                         f"{g.n_edges:,} edges, 50 blocks, mu 0.3")
    elif graph == "karate":
        from sg_jax.graph.datasets import bundled

        edges, labels, _ = bundled("karate")
        desc = "Zachary's karate club"
    else:
        edges, desc = Path(graph), graph
    out = []
    for path, name in ((edges, "edges"), (labels, "labels")):
        if path is None:
            out.append(None)
            continue
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        plain = tmp / f"graph.{name}"
        with opener(path, "rb") as src, open(plain, "wb") as dst:
            for line in src:
                if not line.startswith(b"#"):
                    dst.write(line)
        out.append(str(plain))
    return out[0], out[1], desc


def run_child(side: str, args, edges, labels) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--edges-file", edges, "--p", str(args.p), "--q", str(args.q),
           "--walks", str(args.walks), "--walk-length", str(args.walk_length), "--window", str(args.window),
           "--dim", str(args.dim), "--epochs", str(args.epochs), "--seed", str(args.seed), "--workers",
           str(args.workers), "--nodes", str(args.nodes), "--edges-m", str(args.edges_m)]
    if labels:
        cmd += ["--labels-file", labels]
    for item in args.set:
        cmd += ["--set", item]
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t0
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graph", default="debian")
    ap.add_argument("--labels", default=None)
    ap.add_argument("--p", type=float, default=1.0)
    ap.add_argument("--q", type=float, default=1.0)
    ap.add_argument("--walks", type=int, default=4)
    ap.add_argument("--walk-length", type=int, default=40)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--throughput", action="store_true", help="walk steps/s on a generated 1M-node graph")
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--edges-m", type=int, default=10_000_000)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="an sg_jax Config field over the graph defaults (repeatable), e.g. --set window_layout=span")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--edges-file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--labels-file", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.edges, args.labels = args.edges_file, args.labels_file
        fn = {"pecanpy": child_pecanpy, "sg_jax": child_sg_jax, "throughput": child_throughput}[args.child]
        print(json.dumps(fn(args)))
        return
    load_before = os.getloadavg()
    if args.throughput:
        r = run_child("throughput", args, "-", None)
        rows = [[x["method"], x["p"], x["q"], x["walks"], x["walk_length"], x["steps"], round(x["cold_s"], 2),
                 round(x["warm_s"], 2), round(x["cold_steps_per_s"]), round(x["warm_steps_per_s"])] for x in r["rows"]]
        table = common.markdown_table(["method", "p", "q", "walks", "length", "steps", "cold s", "warm s",
                                       "cold steps/s", "warm steps/s"], rows)
        record = {"command": common.command_line(), "machine": common.machine(), "load_before": load_before,
                  "load_after": os.getloadavg(), "result": r}
        md = (f"# sg_jax walk throughput\n\n`{record['command']}`\n\nGraph: generated planted partition, "
              f"{r['nodes']:,} nodes, {r['edges']:,} edges (max degree {r['max_degree']:,}, {r['isolated']:,} "
              f"isolated), generated and put in CSR in {r['generate_s']:.1f} s. Peak {r['peak_mib']} MiB.\n\n{table}\n\n"
              f"Load average before/after: {load_before} / {record['load_after']}\n\n{common.machine_markdown(record['machine'])}")
        print(md)
        if args.out:
            common.write_outputs(args.out, record, md)
        return
    with tempfile.TemporaryDirectory() as tmp:
        edges, labels, desc = prepare(args.graph, args.labels, Path(tmp))
        runs = {"pecanpy": [], "sg_jax": []}
        for r in range(args.repeats):
            for side in (("pecanpy", "sg_jax") if r % 2 == 0 else ("sg_jax", "pecanpy")):
                print(f"repeat {r + 1}: {side} ...", file=sys.stderr, flush=True)
                runs[side].append(run_child(side, args, edges, labels))
    keys = ["load_s", "walk_s", "train_s", "job_s", "walk_steps_per_s", "warm_walk_s", "warm_steps_per_s", "peak_mib",
            "micro_f1", "macro_f1"]
    med = {side: {k: common.median([x.get(k) for x in rs]) for k in keys} for side, rs in runs.items()}
    pe, sj = med["pecanpy"], med["sg_jax"]
    ratios = {"walk_speedup_cold": pe["walk_s"] / sj["walk_s"], "walk_speedup_warm": pe["warm_walk_s"] / sj["warm_walk_s"],
              "job_time_ratio": sj["job_s"] / pe["job_s"], "train_time_ratio": sj["train_s"] / pe["train_s"]}
    if pe.get("micro_f1") is not None:
        ratios["micro_f1_delta"] = sj["micro_f1"] - pe["micro_f1"]
        ratios["macro_f1_delta"] = sj["macro_f1"] - pe["macro_f1"]
    header = ["side", "load s", "walk s", "train s", "job s", "walk steps/s", "warm walk s", "warm steps/s",
              "peak MiB", "micro-F1", "macro-F1"]
    rows = [[side] + [None if med[side][k] is None else round(med[side][k], 4 if "f1" in k else 2) for k in keys]
            for side in ("pecanpy", "sg_jax")]
    table = common.markdown_table(header, rows)
    record = {"command": common.command_line(), "graph": desc, "settings": {k: getattr(args, k) for k in (
        "p", "q", "walks", "walk_length", "window", "dim", "epochs", "seed", "workers", "repeats", "set")},
        "machine": common.machine(), "load_before": load_before, "load_after": os.getloadavg(), "runs": runs,
        "median": med, "ratios": ratios}
    md = "\n".join([
        "# sg_jax node2vec vs PecanPy + gensim", "", f"`{record['command']}`", "", f"Graph: {desc}.", "",
        f"Settings: {record['settings']}", "", table, "",
        f"walks: sg_jax {ratios['walk_speedup_cold']:.1f}x faster than PecanPy (first call, compilation included), "
        f"{ratios['walk_speedup_warm']:.1f}x (second call); whole job (load + walks + training): sg_jax takes "
        f"{ratios['job_time_ratio']:.2f}x PecanPy + gensim's time (training alone {ratios['train_time_ratio']:.2f}x)"
        + (f"; micro-F1 {ratios['micro_f1_delta']:+.4f}, macro-F1 {ratios['macro_f1_delta']:+.4f} (sg_jax - peer)"
           if "micro_f1_delta" in ratios else "") + ".", "",
        f"Load average before/after: {load_before} / {record['load_after']} (other jobs share the 2 cores).", "",
        common.machine_markdown(record["machine"])])
    print(md)
    if args.out:
        common.write_outputs(args.out, record, md)


if __name__ == "__main__":
    main()
