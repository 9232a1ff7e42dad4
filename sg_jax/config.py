"""The configuration of a run: one frozen dataclass, the single source of every option.

Each field carries its help text, its allowed values and its check as metadata. The command line
(`sg_jax.cli.options`) builds its flags, help and choices from these fields; config.json, the
checkpoint and the sweep's records store `to_dict()`; the sweep's "reproduce" command line is
generated back from a Config. Choices that depend on what is registered (architectures,
objectives, optimizers) are read from the registries when asked, so a new objective appears
everywhere without touching this file.

Defaults follow word2vec / gensim: skip-gram with negative sampling, window 5, dim 100.
"""

from __future__ import annotations

import dataclasses
import math

from sg_jax.batching import auto_batch_size
from sg_jax.combinations import COMBINATION_RULES
from sg_jax.combine_rules import SYNC_COMBINES
from sg_jax.errors import ConfigError, FormatError, quoted
from sg_jax.options import (added_fields, at_least, cbow_update_choices, field_problem, init_choices, option,
                            positive_finite, registered_architectures, registered_layouts, registered_objectives,
                            registered_optimizers, sg_form_choices, type_ok)

MAX_WINDOW = 2**30   # offsets and window draws are int32 on the device
KEY_SCHEDULE, KEY_SCHEDULES = 2, (1, 2)   # sg_jax.keys.SCHEDULE and SCHEDULES (config must not import JAX)
LAYOUT_RULES, LAYOUT_RULES_ALL = 2, (1, 2)   # what window_layout auto follows (sg_jax.data.layouts.resolve)
MAX_SEED = 2**64 - 1  # the seed is the 64-bit key data (hi, lo) of the run's PRNG key
# a call scans all its steps, those past the epoch's end included (skipped, but each still a loop
# iteration), and holds a loss per step: beyond a few thousand steps a call only adds waiting
MAX_STEPS_PER_CALL = 4096
# sync_every auto (docs/devices.md): on 2 devices the capped sum of the replicas' changes is their
# plain sum, and syncing once per call (64 steps) kept the quality of syncing every 8 steps over
# seeds 0-3; on 4 and 8 devices 32 or 64 steps lost analogy accuracy, 8 did not
AUTO_SYNC_TWO_DEVICES = 64
AUTO_SYNC = 8
SYNC_TARGETS = 1024   # the per-device batch up to which the auto sync intervals above hold


def _resolved_layout(config):
    # JAX must not start yet: the command line builds Configs before it sets XLA_FLAGS (sg_jax.options)
    from sg_jax.data.layouts import resolve
    from sg_jax.objectives import make_objective  # JAX must not start yet: see sg_jax.options

    return resolve(config, make_objective)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that determines a run (with the corpus and the device count)."""

    # model
    arch: str = option("sg", "architecture: skip-gram or CBOW", choices=registered_architectures, group="model")
    objective: str = option("ns", "training objective", choices=registered_objectives, group="model")
    sg_form: str = option(
        "auto", "skip-gram: the target's vector predicts its contexts (target, the textbook form) or each "
        "context's vector predicts the target (context, word2vec's form); auto: the objective's choice "
        "(target for softmax, context otherwise)", choices=sg_form_choices, group="model")
    # a config saved before this field: the default until the trust region made word2vec's rule stable
    cbow_update: str = option(
        "sum", "CBOW: each context row receives all of dE/dh (sum: word2vec's and gensim's rule, the default: "
        "with the trust region it is stable at gensim's rates and keeps their quality) or 1/C of it (mean: "
        "the exact gradient of the loss)", choices=cbow_update_choices, group="model", added="mean")
    dim: int = option(100, "embedding dimension N", check=at_least(1)[0], rule=at_least(1)[1], group="model")
    window: int = option(5, "max context offset", check=lambda v: 1 <= v <= MAX_WINDOW,
                         rule=lambda v: "must be >= 1" if v < 1 else f"must be <= {MAX_WINDOW:,}", group="model")
    dynamic_window: bool = option(True, "word2vec's reduced window: b ~ U{1..window} per target", group="model")
    # a config saved before this field: before the option, every step was padded
    window_layout: str = option(
        "auto", "how a step lays out the dynamic window's contexts: padded (2 x window slots per target, "
        "about half of them masked padding), packed (one sub-batch per drawn window b with 2b slots: no "
        "window padding; the step's windows are dealt without replacement, exactly batch/window of each), "
        "span (a step's targets are runs of span_length consecutive tokens, as word2vec reads them: each "
        "position's row is read once, and scored once against its span's noise pool; shuffle orders the "
        "spans; needs skip-gram in word2vec's form or CBOW, ns or nce, and share_negatives pool or target) or auto "
        "(span where it applies, else padded)", choices=registered_layouts, group="model", added="padded")
    span_length: int = option(64, "window_layout span: consecutive tokens read as one span (a step takes "
                              "batch_size / span_length spans from random places of the epoch)",
                              check=at_least(1)[0], rule=at_least(1)[1], group="model", added=None)
    # a config saved before this field: its span_length was also the pool's group
    pool_group: int | None = option(
        None, "share_negatives pool: targets sharing one pool of noise words (consecutive in a batch); auto: "
        "span_length with the span layout, whose spans are the groups, else 64. The run records the resolved value",
        check=at_least(1)[0], rule=at_least(1)[1], group="model", metavar="N|auto",
        added=lambda saved: saved.get("span_length", 64))
    negative: int = option(5, "noise words per prediction (ns, nce)", check=lambda v: 1 <= v <= 10_000,
                           rule=lambda v: "must be >= 1" if v < 1 else "must be <= 10,000", group="model")
    share_negatives: str = option(
        "auto", "draw noise words per pair (none, as word2vec), per target group (target), per batch (batch: "
        "k words shared by every prediction, which diverges at word2vec's rates), as pools (pool: "
        "noise_pool words shared by each group of pool_group targets, each weighted k/noise_pool: the "
        "expected gradient of k words per pair, scored as matrix products), or auto (pool with the span "
        "layout, else target)", choices=("auto", "none", "target", "batch", "pool"), group="model")
    noise_pool: int = option(64, "share_negatives pool: noise words drawn for each group of pool_group targets",
                             check=lambda v: 1 <= v <= 100_000, rule=lambda v: "must be >= 1" if v < 1 else
                             "must be <= 100,000", group="model", added=None)
    noise_power: float = option(0.75, "exponent of the noise distribution count^power (ns, nce); a negative "
                                "one draws rare words more often than frequent ones",
                                check=lambda v: -10 <= v <= 10 and math.isfinite(v), rule="must be in [-10, 10]",
                                group="model", added=None)
    init: str = option("gensim", "initialisation: gensim (W uniform +-1/N, W' = 0, as gensim 4), word2vec (W "
                       "uniform +-0.5/N, W' = 0, as the word2vec C tool) or normal", choices=init_choices,
                       group="model")
    # data
    sample: float = option(1e-3, "subsampling threshold t (0 disables)", check=lambda v: v >= 0 and math.isfinite(v),
                           rule="must be >= 0", group="data")
    min_count: int = option(5, "drop words rarer than this", check=at_least(1)[0], rule=at_least(1)[1],
                            group="data")
    max_vocab: int | None = option(None, "keep only the N most frequent words", check=at_least(2)[0],
                                   rule=at_least(2)[1], group="data")
    lowercase: bool = option(True, "lowercase the corpus", group="data", added=None)
    encoding_errors: str = option("strict", "invalid UTF-8: stop with an error (strict) or replace with U+FFFD",
                                  choices=("strict", "replace"), group="data", added=None)
    unicode_normalization: str = option(
        "NFC", "normalise the corpus text before tokenizing: NFC (a letter with a combining accent and its "
        "precomposed form become one word), NFKC (also folds compatibility forms such as ligatures and "
        "full-width letters) or none", choices=("NFC", "NFKC", "none"), group="data", added=None)
    strip_diacritics: bool = option(
        False, "remove Arabic harakat, superscript alef, Quranic annotation signs and tatweel, and Hebrew points "
        "and cantillation marks, after normalising (so a word written with and without vowel marks is one word; "
        "letters and the vowel signs of other scripts stay)", group="data", added=None)

    @property
    def normalize(self) -> str | None:
        """unicode_normalization as the corpus reader's `normalize` ("none" -> None)."""
        return None if self.unicode_normalization == "none" else self.unicode_normalization
    # training
    epochs: int = option(5, "passes over the corpus", check=at_least(1)[0], rule=at_least(1)[1])
    lr: float | None = option(None, "initial learning rate (default: the architecture's, 0.025 sg, 0.05 cbow)",
                              check=positive_finite, rule="must be a positive number")
    min_lr_ratio: float = option(1e-4, "the rate decays linearly to lr * min_lr_ratio",
                                 check=lambda v: 0 <= v <= 1, rule="must be in [0, 1]")
    optimizer: str = option("sgd", "optimizer applied to each step's row gradients", choices=registered_optimizers,
                            added=None)
    batch_size: int | None = option(
        None, "targets per step (capped by the vocabulary size unless --no-cap-batch, and by memory); auto: "
        "1,024, halved while lr x negative x batch exceeds 512 (k = 15: 512 at lr 0.05, 256 at 0.1; "
        "sg_jax.batching). The run records the resolved value", check=at_least(1)[0], rule=at_least(1)[1],
        metavar="N|auto")
    # a config saved before this field: every batch was capped at the vocabulary
    cap_batch: bool = option(
        True, "take at most as many targets a step as the vocabulary has words (more sums dozens of gradients "
        "into every row, which the trust region bounds; the cap keeps several steps an epoch on a small "
        "corpus); --no-cap-batch keeps the batch asked for, as an accelerator needs on a small vocabulary",
        added=True)
    pairs: bool = option(False, "batches of (target, context) pairs instead of target groups")
    shuffle: bool = option(True, "visit the targets of an epoch in random order")
    steps_per_call: int = option(
        64, f"steps scanned inside one jitted call (at most {MAX_STEPS_PER_CALL:,}: a call scans all its steps, "
        "those past the epoch's end too)", check=lambda v: 1 <= v <= MAX_STEPS_PER_CALL,
        rule=lambda v: "must be >= 1" if v < 1 else f"must be <= {MAX_STEPS_PER_CALL:,} (a call scans all its "
        "steps, those past the epoch's end too, so a larger call only adds waiting)")
    # 2^24: a chunk's epoch (subsampled, compacted, ordered) needs about 40 bytes a token at its
    # peak, so a run of any corpus size stays near 1.3 GB (benchmarks/README.md); 2^26 before
    chunk_tokens: int = option(1 << 24, "corpus tokens held on the device at once (an epoch is shuffled "
                               "within each chunk; runs before this default used 67108864)",
                               check=at_least(2)[0], rule=at_least(2)[1])
    clip_norm: float | None = option(None, "clip each step's (dense-equivalent) gradient norm to this",
                                     check=positive_finite, rule="must be > 0")
    dup_cap: float | None = option(
        None, "a row met n > cap times in a batch moves by cap/n of its summed gradient (default: off under the "
        "trust region, which bounds those rows already; without it the objective's: 64 for hs, whose root is on "
        "every path)",
        check=lambda v: v >= 1 and math.isfinite(v), rule="must be >= 1")
    # a config saved before this field: before the option, a row moved by its whole summed update
    trust_region: float = option(
        2.0, "a step moves each row by its summed update only as far as changes no score of the step by more "
        "than this (|row update| x the largest norm of the other table's rows in the step): rare rows keep "
        "word2vec's full step, frequent rows, whose many gradients a step sums at the same parameters, never "
        "overshoot, at any batch size; 0 turns it off (docs/devices.md)",
        check=lambda v: v >= 0 and math.isfinite(v), rule="must be a number >= 0", added=0.0)
    dtype: str = option("float32", "parameter type", choices=("float32", "float64"))
    # a config saved before this field: 0.1.0 trained on one device
    devices: int | None = option(
        1, "devices to train on, data-parallel over a mesh; 'all' for every device (on a CPU the command line "
        "makes every core a device). Counted over every process of a multi-process run (a multiple of the "
        "processes). Recorded with the run: a run resumes on the same count",
        check=at_least(1)[0], rule=at_least(1)[1], metavar="N|all", added=1)
    # a config saved before this field: before the option, several devices summed
    sync_combine: str = option(
        "auto", "with several devices: how a row's changes from the replicas combine at a sync: trust (summed, "
        "then each row's sum held to the trust region as one device's step over all the devices' batches would "
        "be, the bound times sync_every; needs trust_region), cap (summed, but a row moves at most twice as far "
        "as the furthest one replica moved it: the sum on 2 devices, stable on 4 and 8, but it loses SimLex-999 "
        "there), sum (one large step over all the devices' batches; diverges on 4 devices without the trust "
        "region) or mean (averaged over the replicas that touched the row; stable but loses quality); auto: "
        "trust under the trust region, else cap (docs/devices.md). The run records the resolved rule",
        choices=("auto", *SYNC_COMBINES), added="sum")
    # a config saved before this field: before the option, each device took batch_size targets
    split_batch: bool = option(
        True, "with several devices: batch_size is the step's batch, split over the devices (each takes "
        "batch_size / N targets), so the summed step, whose overshoot on frequent words grows with the batch, "
        "stays that of one device; --no-split-batch gives each device batch_size targets (an N-fold step: "
        "faster per step, but 4 and more devices lose quality)", added=False)
    sync_every: int | None = option(
        None, "with several devices: steps between the all-reduces that sum the replicas' changes (a divisor of "
        "steps_per_call); auto: on 2 devices, where the capped sum is the plain sum, 64 (once per call; it kept "
        "the quality of syncing every 8 steps); on more devices 8 (longer intervals lost analogy accuracy); "
        "divided by how far a device's batch exceeds 1,024 targets (8 devices of 8,192 each: every step); the "
        "largest divisor of steps_per_call up to those (docs/devices.md). An explicit value must divide "
        "steps_per_call, and does not apply to shard_tables. The run records the resolved value",
        check=at_least(1)[0], rule=at_least(1)[1], metavar="N|auto", added=None)
    shard_tables: bool = option(
        False, "with several devices: split W, W' and the optimizer state by vocabulary row over the devices "
        "(each holds 1/N of them) instead of a copy on each, for vocabularies too large for one device; every "
        "step is then synchronous (as sync_every 1 with sync_combine sum), so sync_every does not apply", added=None)
    key_schedule: int = option(
        KEY_SCHEDULE, "how the run's random keys derive from its seed (sg_jax.keys): 2, a stream per purpose "
        "(initialisation, each epoch's subsampling and order, its steps, vocabulary growth); 1, the schedule of "
        "runs saved before it, where the initialisation and the first epoch's subsampling shared a key. A run "
        "resumes under the schedule it was trained with", check=lambda v: v in KEY_SCHEDULES,
        rule=f"must be one of {', '.join(map(str, KEY_SCHEDULES))}", added=1)
    layout_rules: int = option(
        LAYOUT_RULES, "the rules window_layout auto and share_negatives auto follow: 2, CBOW trains on spans with "
        "noise pools as skip-gram does; 1, the rules of runs saved before, where CBOW took the padded layout "
        "with noise per target. A run resumes under the rules it was trained with",
        check=lambda v: v in LAYOUT_RULES_ALL, rule=f"must be one of {', '.join(map(str, LAYOUT_RULES_ALL))}",
        added=1)
    seed: int = option(0, "random seed (0 to 2**64 - 1)", check=lambda v: 0 <= v <= MAX_SEED,
                       rule="must be in [0, 2**64 - 1]")

    # ------------------------------------------------------------------ derived values

    @property
    def resolved_sg_form(self) -> str:
        if self.sg_form != "auto":
            return self.sg_form
        from sg_jax.objectives import get_spec  # JAX must not start yet: see sg_jax.options

        return get_spec(self.objective).sg_form

    @property
    def form(self) -> str:
        """The architecture's form this config trains: target, context or cbow."""
        from sg_jax.architectures import get_architecture  # JAX must not start yet: see sg_jax.options

        return get_architecture(self.arch).form(self.resolved_sg_form)

    @property
    def layout(self) -> str:
        """window_layout with auto resolved (`sg_jax.data.layouts.resolve`): the span layout with
        pooled noise where it can train the config, else padded. (Spans with noise per target are
        an explicit choice: they lost WordSim-353 against the padded layout with the same noise,
        see docs/devices.md.)"""
        return _resolved_layout(self)[0].name

    @property
    def sharing(self) -> str:
        """share_negatives with auto resolved: the layout's (pool with spans), else target."""
        return _resolved_layout(self)[1]

    def sync_interval(self, devices: int) -> int:
        """sync_every with auto resolved for `devices` devices (see the option's help): 1 on one
        device (nothing to sync: every step is its own) and with shard_tables (every step is
        synchronous); else the largest divisor of steps_per_call up to 64 on 2 devices, up to 8 on
        more. `sg_jax.resolved.resolve` records it."""
        if self.shard_tables:
            return 1
        if self.sync_every is not None:
            return self.sync_every
        if devices == 1:
            return 1
        most = AUTO_SYNC_TWO_DEVICES if devices == 2 else AUTO_SYNC
        # the intervals were measured at up to SYNC_TARGETS targets per device and step; a larger
        # per-device batch syncs proportionally more often (8 devices of 8,192 targets each: every
        # step), since the replicas drift further apart per step (docs/devices.md)
        batch = self.resolved_batch_size
        per_device = batch // devices if self.split_batch else batch
        most = max(1, min(most, most * SYNC_TARGETS // max(per_device, 1)))
        return max(d for d in range(1, most + 1) if self.steps_per_call % d == 0)  # syncs at fixed steps of a call

    @property
    def resolved_sync_combine(self) -> str:
        """sync_combine with auto resolved: trust under the trust region (the replicas' summed
        changes held as one device's step over their batches would be: it kept SimLex-999 where
        cap lost it on 4 and 8 devices, docs/devices.md), else cap; with shard_tables, whose every
        step is one synchronous step, what that step is (trust under the trust region, else sum).
        `sg_jax.resolved.resolve` records it."""
        if self.sync_combine != "auto":
            return self.sync_combine
        if self.shard_tables:  # one synchronous step over all the batches: held by the trust region, or summed
            return "trust" if self.trust_region else "sum"
        return "trust" if self.trust_region else "cap"

    @property
    def resolved_batch_size(self) -> int:
        """batch_size, or auto's from the rate and the noise words (`sg_jax.batching`)."""
        return auto_batch_size(self) if self.batch_size is None else self.batch_size

    @property
    def resolved_dup_cap(self) -> float | None:
        """The cap set, else none under the trust region, else the objective's. The cap was hs's
        guard for its root and upper tree nodes, on every path; the trust region bounds their moves
        already, and on a small corpus the cap froze them (sg hs on 60K tokens: WordSim-353 0.002
        with it, 0.224 without; docs/devices.md)."""
        if self.dup_cap is not None:
            return self.dup_cap
        if self.trust_region:
            return None
        from sg_jax.objectives import get_spec  # JAX must not start yet: see sg_jax.options

        return get_spec(self.objective).dup_cap

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        from sg_jax.architectures import get_architecture  # JAX must not start yet: see sg_jax.options

        return get_architecture(self.arch).default_lr

    # ------------------------------------------------------------------ checks and (de)serialisation

    def validate(self) -> "Config":
        """Raise ConfigError naming the first field whose value is not allowed."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            problem = field_problem(f, value)
            if problem:
                raise ConfigError(problem)
        problem = self.combination_problem()
        if problem:
            raise ConfigError(problem)
        return self

    def combination_problem(self) -> str | None:
        """The message of the first rule in `COMBINATION_RULES` this config breaks, then of its
        window layout's refusal (`Layout.refusal`), then of a pool group the run would not use,
        or None."""
        for applies, message in COMBINATION_RULES:
            if applies(self):
                return message(self)
        from sg_jax.objectives import make_objective  # JAX must not start yet: see sg_jax.options

        layout, sharing = _resolved_layout(self)
        refusal = layout.refusal(self, make_objective(self))
        if refusal is None and self.pool_group not in (None, layout.pool_group(self)) and sharing != "pool":
            # auto passes over the span layout, whose groups are its spans, to one that draws no pools
            return (f"pool_group {self.pool_group} has no effect: the run shares noise words {sharing!r}, not in "
                    f"pools (window_layout {layout.name}); set share_negatives pool to use it, or span_length to "
                    "change the span layout's groups")
        return refusal

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "config") -> "Config":
        """A Config from a dict written by `to_dict`; fields it lacks take their defaults (an
        older file), fields this version does not know are refused."""
        if not isinstance(d, dict):
            raise FormatError(f"{where} is not a JSON object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise FormatError(f"{where} has unknown field{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(quoted, unknown))} (written by a newer sg_jax?)")
        missing = [name for name in known if name not in d and name not in ADDED_FIELDS]
        if missing:
            raise FormatError(f"{where} lacks the field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        for name, value in d.items():
            if not type_ok(known[name], value):
                raise FormatError(f"{where}: {name} = {value!r} is not a {known[name].type}")
        older = {name: value(d) if callable(value) else value for name, value in ADDED_FIELDS.items()
                 if name not in d and value is not None}
        return cls(**{**d, **older})


def config_fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(Config)


# the fields added since sg_jax 0.1.0, with the value a config saved before each takes
ADDED_FIELDS = added_fields(Config)
# the options whose auto (None, or "auto": `is_auto`) `sg_jax.resolved.resolve` replaces by a value
# the run records; a run resumed with one left auto takes the value it was trained with
RESOLVED_AUTO = ("sync_every", "pool_group", "sync_combine", "batch_size")


def is_auto(value) -> bool:
    """Whether an option's value is its auto (None for numbers, "auto" for named choices)."""
    return value is None or value == "auto"
