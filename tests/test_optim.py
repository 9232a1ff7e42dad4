"""sg_jax.optim: row-sparse optax steps against optax's own dense update, a hand-written lazy
Adam/Adagrad, and the trainer's SGD arithmetic."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sg_jax import optim
from sg_jax.errors import ConfigError
from sg_jax.model import Params, init_params
from sg_jax.objectives import Batch, get_objective
from sg_jax.objectives.negative import noise_table

V, V_OUT, N = 7, 5, 3
SCHEDULE = optax.linear_schedule(0.2, 0.05, 10)


def make_tx(name, cap=None, clip=None, **options):
    parts = []
    if cap is not None:
        parts.append(optim.cap_duplicates(cap))
    if clip is not None:
        parts.append(optim.clip_by_table_norm(clip))
    tx = optim.make_optimizer(name, SCHEDULE, **options)
    return optax.chain(*parts, tx) if parts else tx


def random_params(rng):
    return Params(jnp.asarray(rng.normal(size=(V, N))), jnp.asarray(rng.normal(size=(V_OUT, N))))


def covering_indices(rng, rows, extra):
    """Every row once plus row 3 three more times (so a cap of 2 bites) and `extra` random
    repeats, in random order."""
    repeats = np.concatenate([np.arange(rows), np.full(3, 3), rng.integers(0, rows, extra)])
    return jnp.asarray(rng.permutation(repeats), jnp.int32)


def dense(g, idx, rows):
    out = np.zeros((rows,) + g.shape[1:])
    np.add.at(out, np.asarray(idx), np.asarray(g))
    return out


def active_counts(g, idx, rows):
    out = np.zeros(rows)
    np.add.at(out, np.asarray(idx), np.any(np.asarray(g) != 0, axis=1))
    return out


def dense_step(tx, params, state, row_grads, indices):
    """optax's own update on the scatter-added gradient, each row's occurrences as counts."""
    grads, counts = [], []
    for w, g, i in zip(params, row_grads, indices):
        grads.append(g if i is None else dense(g, i, w.shape[0]))
        counts.append(None if i is None else active_counts(g, i, w.shape[0]))
    updates, state = tx.update(Params(*map(jnp.asarray, grads)), state, params,
                               indices=Params(None, None),
                               counts=Params(*(None if c is None else jnp.asarray(c) for c in counts)))
    return optax.apply_updates(params, updates), state


def step_counts(state):
    return [int(v) for _, v in optax.tree_utils.tree_get_all_with_path(state, "count")]


def assert_trees_close(got, want, rtol=1e-12, atol=1e-12):
    got_leaves, want_leaves = jax.tree.leaves(got), jax.tree.leaves(want)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


CASES = [
    ("sgd", {}, None, None, None),
    ("sgd", {}, None, None, True),           # the summed path, forced
    ("sgd", {"momentum": 0.9}, None, None, None),
    ("adagrad", {}, None, None, None),
    ("adam", {}, None, None, None),
    ("sgd", {}, 2, 0.5, None),
    ("adagrad", {}, 2, 0.5, None),
    ("adam", {}, 2, 0.5, None),
]


@pytest.mark.parametrize("name,options,cap,clip,sum_dup", CASES)
@pytest.mark.parametrize("softmax", [False, True])
def test_all_rows_touched_equals_dense_update(name, options, cap, clip, sum_dup, softmax, x64):
    rng = np.random.default_rng(0)
    tx = make_tx(name, cap, clip, **options)
    params = want_params = random_params(rng)
    state = want_state = tx.init(params)
    for _ in range(2):   # the second step reads the state the first one wrote
        in_idx = covering_indices(rng, V, 6)
        out_idx = None if softmax else covering_indices(rng, V_OUT, 8)
        g_out = rng.normal(size=(V_OUT, N) if softmax else (out_idx.shape[0], N))
        g_in = rng.normal(size=(in_idx.shape[0], N))
        g_in[0] = 0.0   # a padded position: no gradient, and not counted by the cap
        row_grads = Params(jnp.asarray(g_in), jnp.asarray(g_out))
        indices = Params(in_idx, out_idx)
        params, state = optim.sparse_step(tx, params, state, row_grads, indices, sum_duplicates=sum_dup)
        want_params, want_state = dense_step(tx, want_params, want_state, row_grads, indices)
    assert_trees_close(params, want_params)
    assert_trees_close(state, want_state)


def lazy_reference(name, params, steps, b1=0.9, b2=0.999, eps_adam=1e-8, acc0=0.1, eps_rss=1e-7):
    """Lazy Adam / Adagrad by hand: a row's state moves only at steps that touch it; Adam's bias
    correction uses the global step t."""
    tables = [np.array(w) for w in params]
    m = [np.zeros_like(w) for w in tables]
    v = [np.zeros_like(w) if name == "adam" else np.full_like(w, acc0) for w in tables]
    for t, (grads, indices) in enumerate(steps, start=1):
        lr = float(SCHEDULE(jnp.asarray(t - 1, jnp.int32)))   # the rate as optax evaluates it (int32 count)
        for k, (g, idx) in enumerate(zip(grads, indices)):
            total = dense(g, idx, tables[k].shape[0])
            for r in sorted(set(np.asarray(idx).tolist())):
                if name == "adam":
                    m[k][r] = b1 * m[k][r] + (1 - b1) * total[r]
                    v[k][r] = b2 * v[k][r] + (1 - b2) * total[r] ** 2
                    m_hat, v_hat = m[k][r] / (1 - b1 ** t), v[k][r] / (1 - b2 ** t)
                    tables[k][r] -= lr * m_hat / (np.sqrt(v_hat) + eps_adam)
                else:
                    v[k][r] = v[k][r] + total[r] ** 2
                    tables[k][r] -= lr * total[r] / np.sqrt(v[k][r] + eps_rss)
    return tables, m, v


@pytest.mark.parametrize("name", ["adam", "adagrad"])
def test_untouched_rows_keep_params_and_state_touched_rows_are_lazy(name, x64):
    rng = np.random.default_rng(1)
    tx = optim.make_optimizer(name, SCHEDULE)
    params0 = random_params(rng)
    # row 1 of w_in is touched at steps 1 and 3 only, so a non-lazy update would decay its state
    index_sets = [([0, 1, 3, 3, 1], [2, 4]), ([0, 3, 5], [2, 2, 0]), ([1, 5, 0, 0], [4, 0])]
    steps = []
    for in_rows, out_rows in index_sets:
        indices = Params(jnp.asarray(in_rows, jnp.int32), jnp.asarray(out_rows, jnp.int32))
        grads = Params(jnp.asarray(rng.normal(size=(len(in_rows), N))),
                       jnp.asarray(rng.normal(size=(len(out_rows), N))))
        steps.append((grads, indices))
    params, state = params0, tx.init(params0)
    for grads, indices in steps:
        params, state = optim.sparse_step(tx, params, state, grads, indices)

    want_tables, want_m, want_v = lazy_reference(name, params0, steps)
    for k in range(2):
        np.testing.assert_allclose(np.asarray(params[k]), want_tables[k], rtol=1e-12, atol=1e-12)
    moments = {"mu": want_m, "nu": want_v} if name == "adam" else {"sum_of_squares": want_v}
    for field, want in moments.items():
        got = optax.tree_utils.tree_get(state, field)
        for k in range(2):
            np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=1e-12, atol=1e-14)
    if name == "adam":
        assert step_counts(state) == [len(steps), len(steps)]   # adam's and the schedule's
    untouched_in, untouched_out = [2, 4, 6], [1, 3]
    np.testing.assert_array_equal(np.asarray(params.w_in)[untouched_in], np.asarray(params0.w_in)[untouched_in])
    np.testing.assert_array_equal(np.asarray(params.w_out)[untouched_out], np.asarray(params0.w_out)[untouched_out])
    fresh = tx.init(params0)
    for leaf, leaf0, tag in zip(jax.tree.leaves(state), jax.tree.leaves(fresh),
                                jax.tree.leaves(optim.row_state_tables(tx, state, params0))):
        if tag >= 0:
            rows = untouched_in if tag == 0 else untouched_out
            np.testing.assert_array_equal(np.asarray(leaf)[rows], np.asarray(leaf0)[rows])


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_a_row_met_three_times_equals_once_with_the_summed_gradient(name, x64):
    rng = np.random.default_rng(2)
    tx = optim.make_optimizer(name, SCHEDULE)
    params = random_params(rng)
    g = rng.normal(size=(5, N))
    out_g = Params(jnp.asarray(g[:1]), jnp.asarray(rng.normal(size=(1, N))))
    repeated = Params(jnp.asarray(g[1:4]), out_g.w_out)  # row 4 three times
    once = Params(jnp.asarray(g[1:4].sum(axis=0, keepdims=True)), out_g.w_out)
    out_idx = jnp.asarray([2], jnp.int32)
    got = optim.sparse_step(tx, params, tx.init(params), repeated, Params(jnp.asarray([4, 4, 4], jnp.int32), out_idx))
    want = optim.sparse_step(tx, params, tx.init(params), once, Params(jnp.asarray([4], jnp.int32), out_idx))
    assert_trees_close(got, want)
    assert not np.allclose(np.asarray(got[0].w_in[4]), np.asarray(params.w_in[4]))


def test_cap_duplicates_moves_a_frequent_row_by_cap_over_n_of_its_sum(x64):
    rng = np.random.default_rng(3)
    idx = jnp.asarray([2, 5, 2, 1, 2, 5, 2], jnp.int32)     # row 2: 4 times, row 5: twice, row 1: once
    g = rng.normal(size=(7, N))
    g[6] = 0.0                                              # a padded position of row 2: not counted
    capped, _ = optim.cap_duplicates(2).update((jnp.asarray(g),), optax.EmptyState(), indices=(idx,))
    got, want = dense(capped[0], idx, V), dense(g, idx, V)
    np.testing.assert_allclose(got[2], want[2] * 2 / 3, rtol=1e-13)
    np.testing.assert_array_equal(got[[1, 5]], want[[1, 5]])
    np.testing.assert_array_equal(np.asarray(capped[0])[[1, 3, 5]], g[[1, 3, 5]])


def test_cap_duplicates_on_a_dense_table_uses_the_counts(x64):
    g = jnp.asarray(np.random.default_rng(4).normal(size=(4, N)))
    counts = jnp.asarray([1, 3, 8, 0])
    capped, _ = optim.cap_duplicates(4).update((g,), optax.EmptyState(), indices=(None,), counts=(counts,))
    np.testing.assert_allclose(np.asarray(capped[0][2]), np.asarray(g[2]) / 2, rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(capped[0])[[0, 1, 3]], np.asarray(g)[[0, 1, 3]])
    unchanged, _ = optim.cap_duplicates(4).update((g,), optax.EmptyState())
    np.testing.assert_array_equal(np.asarray(unchanged[0]), np.asarray(g))


def dense_norm(grads, indices):
    return np.sqrt(sum(np.sum((np.asarray(g) if i is None else dense(g, i, 16)) ** 2)
                       for g, i in zip(grads, indices)))


def test_clip_by_table_norm_clips_the_dense_equivalent_norm(x64):
    rng = np.random.default_rng(5)
    g_in = rng.normal(size=(4, N))
    g_in[3] = -g_in[1]                     # row 6 met twice with opposite gradients: it cancels
    grads = Params(jnp.asarray(g_in), jnp.asarray(rng.normal(size=(V_OUT, N))))
    indices = Params(jnp.asarray([0, 6, 2, 6], jnp.int32), None)
    norm = dense_norm(grads, indices)
    assert norm < np.sqrt(sum(np.sum(np.asarray(g) ** 2) for g in grads))  # the cancellation matters

    clipped, _ = optim.clip_by_table_norm(norm / 3).update(grads, optax.EmptyState(), indices=indices)
    np.testing.assert_allclose(dense_norm(clipped, indices), norm / 3, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(clipped.w_out), np.asarray(grads.w_out) / 3, rtol=1e-13)

    kept, _ = optim.clip_by_table_norm(norm * 1.01).update(grads, optax.EmptyState(), indices=indices)
    for a, b in zip(kept, grads):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def ns_problem():
    counts = np.array([9, 7, 5, 4, 3, 2, 2, 1])
    batch = Batch(targets=jnp.asarray([0, 3, 0, 5], jnp.int32),
                  contexts=jnp.asarray([[1, 0, 2], [0, 0, 4], [1, 6, 0], [7, 7, 0]], jnp.int32),
                  mask=jnp.asarray([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 0]], bool))
    return counts, batch, jnp.asarray(noise_table(counts, size=64))


def _first_version_step(params, opt_state, opt, obj, batch, aux, table, dup_cap, clip_norm):
    """The first version's training step, kept here as the reference: the cap and the clip as
    plain code, then optax.sgd on the row gradients and one scatter-add per table."""
    in_idx, out_idx = obj.indices(batch, aux, table)
    rows = (params.w_in[in_idx], params.w_out[out_idx])
    grads = jax.grad(lambda r: obj.loss_rows(r[0], r[1], batch, aux, table))(rows)

    def occurrences(idx, active):
        key = jnp.where(active, idx, jnp.iinfo(idx.dtype).max)
        ordered = jnp.sort(key)
        return jnp.searchsorted(ordered, idx, side="right") - jnp.searchsorted(ordered, idx, side="left")

    def cap(g, idx):
        n = occurrences(idx, jnp.any(g != 0, axis=-1)).astype(g.dtype)
        return g * jnp.minimum(1.0, dup_cap / jnp.maximum(n, 1.0))[:, None]

    def sq_norm(g, idx):
        order = jnp.argsort(idx)
        sorted_idx = idx[order]
        segment = jnp.cumsum(jnp.concatenate([jnp.zeros(1, jnp.int32),
                                              (sorted_idx[1:] != sorted_idx[:-1]).astype(jnp.int32)]))
        sums = jax.ops.segment_sum(g[order], segment, num_segments=idx.shape[0])
        return jnp.sum(sums * sums)

    if dup_cap is not None:
        grads = (cap(grads[0], in_idx), cap(grads[1], out_idx))
    if clip_norm is not None:
        norm = jnp.sqrt(sq_norm(grads[0], in_idx) + sq_norm(grads[1], out_idx))
        scale = jnp.minimum(1.0, clip_norm / jnp.maximum(norm, 1e-30)).astype(grads[0].dtype)
        grads = (grads[0] * scale, grads[1] * scale)
    updates, opt_state = opt.update(grads, opt_state, rows)
    return Params(params.w_in.at[in_idx].add(updates[0]), params.w_out.at[out_idx].add(updates[1])), opt_state


@pytest.mark.parametrize("dup_cap,clip_norm", [(None, None), (2.0, 0.05)])
def test_sgd_step_is_bit_identical_to_the_first_versions_step(dup_cap, clip_norm):
    counts, batch, table = ns_problem()
    obj = get_objective("sg", "ns", negative=2, share="target", sg_form="context")
    schedule = optax.linear_schedule(0.5, 0.01, 20)
    params = init_params(jax.random.PRNGKey(0), counts.size, 4, init="normal")
    old_opt = optax.sgd(schedule)
    old = (params, old_opt.init((jnp.zeros((1, 4)), jnp.zeros((1, 4)))))
    parts = (([optim.cap_duplicates(dup_cap)] if dup_cap else [])
             + ([optim.clip_by_table_norm(clip_norm)] if clip_norm else []))
    sgd = optim.make_optimizer("sgd", schedule)
    tx = optax.chain(*parts, sgd) if parts else sgd

    @jax.jit
    def old_step(state, key):
        aux = obj.sample(key, batch, table)
        return _first_version_step(*state, old_opt, obj, batch, aux, table, dup_cap, clip_norm)

    @jax.jit
    def new_step(params, opt_state, key):
        aux = obj.sample(key, batch, table)
        indices = Params(*obj.indices(batch, aux, table))
        rows = Params(params.w_in[indices.w_in], params.w_out[indices.w_out])
        grads = jax.grad(lambda r: obj.loss_rows(r.w_in, r.w_out, batch, aux, table))(rows)
        return optim.sparse_step(tx, params, opt_state, grads, indices)

    new, opt_state = params, tx.init(params)
    for s in range(5):
        key = jax.random.PRNGKey(100 + s)
        old = old_step(old, key)
        new, opt_state = new_step(new, opt_state, key)
    assert not np.allclose(np.asarray(new.w_in), np.asarray(params.w_in))
    for a, b in zip(new, old[0]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_jitted_step_with_donated_params_compiles_once():
    traces = []
    tx = make_tx("adam", cap=2, clip=1.0)

    def step(params, opt_state, grads, indices):
        traces.append(1)
        return optim.sparse_step(tx, params, opt_state, grads, indices)

    step = jax.jit(step, donate_argnums=(0, 1))
    rng = np.random.default_rng(6)
    params = Params(jnp.zeros((V, N), jnp.float32), jnp.zeros((V_OUT, N), jnp.float32))
    opt_state = tx.init(params)
    for _ in range(6):
        grads = Params(jnp.asarray(rng.normal(size=(5, N)), jnp.float32),
                       jnp.asarray(rng.normal(size=(4, N)), jnp.float32))
        indices = Params(jnp.asarray(rng.integers(0, V, 5), jnp.int32),
                         jnp.asarray(rng.integers(0, V_OUT, 4), jnp.int32))
        params, opt_state = step(params, opt_state, grads, indices)
    assert len(traces) == 1
    assert step_counts(opt_state) == [6, 6]


def test_indices_past_the_table_are_ignored(x64):
    rng = np.random.default_rng(7)
    tx = optim.make_optimizer("adam", SCHEDULE)
    params = random_params(rng)
    g = jnp.asarray(rng.normal(size=(3, N)))
    got = optim.sparse_step(tx, params, tx.init(params), Params(g, jnp.zeros((1, N))),
                            Params(jnp.asarray([1, V, 3], jnp.int32), jnp.asarray([0], jnp.int32)))
    want = optim.sparse_step(tx, params, tx.init(params), Params(g[jnp.asarray([0, 2])], jnp.zeros((1, N))),
                             Params(jnp.asarray([1, 3], jnp.int32), jnp.asarray([0], jnp.int32)))
    assert_trees_close(got, want)


def test_registry_and_bad_options():
    assert {"sgd", "adagrad", "adam"} <= set(optim.OPTIMIZERS)
    with pytest.raises(ConfigError, match="optimizer must be one of .*'rmsprop'"):
        optim.make_optimizer("rmsprop", 0.1)
    with pytest.raises(ConfigError, match="no option 'beta1'"):
        optim.make_optimizer("adam", 0.1, beta1=0.9)
    with pytest.raises(ConfigError, match="b2 must be in"):
        optim.make_optimizer("adam", 0.1, b2=1.0)
    with pytest.raises(ConfigError, match="lr must be"):
        optim.make_optimizer("sgd", -0.1)
    with pytest.raises(ConfigError, match="dup_cap must be >= 1"):
        optim.cap_duplicates(0.5)
    with pytest.raises(ConfigError, match="clip_norm must be"):
        optim.clip_by_table_norm(0.0)


def test_unsummed_rows_with_a_stateful_optimizer_are_refused():
    tx = optim.make_optimizer("adagrad", 0.1)
    params = Params(jnp.zeros((V, N)), jnp.zeros((V_OUT, N)))
    with pytest.raises(ConfigError, match="sum_duplicates=False"):
        optim.sparse_step(tx, params, tx.init(params), Params(jnp.ones((2, N)), jnp.ones((2, N))),
                          Params(jnp.zeros(2, jnp.int32), jnp.zeros(2, jnp.int32)), sum_duplicates=False)


def test_a_state_that_is_not_row_wise_is_refused():
    def init(params):
        return jax.tree.map(lambda w: jnp.zeros(w.shape[1:]), params)   # one vector per table

    tx = optax.GradientTransformation(init, lambda u, s, p=None: (u, s))
    params = Params(jnp.zeros((V, N)), jnp.zeros((V_OUT, N)))
    with pytest.raises(ConfigError, match="not row-wise"):
        optim.sparse_step(tx, params, tx.init(params), Params(jnp.zeros((2, N)), jnp.zeros((2, N))),
                          Params(jnp.zeros(2, jnp.int32), jnp.zeros(2, jnp.int32)))
