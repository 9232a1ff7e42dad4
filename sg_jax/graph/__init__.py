"""Graph embedding: DeepWalk and node2vec on sg_jax's skip-gram.

    edgelist.py   reading and validating graphs (files, networkx, arrays) -> Graph
    csr.py        the graph as sorted CSR rows, on the host and on the device
    sampler.py    the walk kernels inside jit: uniform steps and node2vec's rejection sampler
    walks.py      walks in chunks -> a node vocabulary and an encoded corpus (sizes checked first)
    embed.py      walks -> sg_jax.runs.run_training (vectors, checkpoint, resume) + graph.json
    evaluate.py   node classification, link prediction, community recovery
    projection.py the 2-D picture coloured by label
    datasets.py   bundled graphs and planted-partition generators
    command.py    `sg-jax graph`
    study.py      `sg-jax graph-study`: a (p, q, walk length) grid
"""
