"""Config is the one source of options: every field round-trips through the command line, JSON
and the reproduce command line; choices come from the registries."""

import dataclasses
import json

import pytest

from sg_jax import cli
from sg_jax.cli.options import config_from_args, config_to_argv
from sg_jax.config import Config, config_fields
from sg_jax.options import field_kind
from sg_jax.errors import ConfigError, FormatError
from sg_jax.objectives import REGISTRY
from sg_jax.resolved import resolve


def _other_value(f: dataclasses.Field):
    """A valid value of the field different from its default."""
    choices = f.metadata.get("choices")
    default = getattr(Config(), f.name)
    if choices is not None:
        allowed = choices() if callable(choices) else choices
        return next(v for v in allowed if v != default)
    kind = field_kind(f)
    if kind is bool:
        return not default
    if f.name == "sync_every":
        return 4  # a divisor of steps_per_call (others are refused)
    if f.name == "pool_group":
        return Config().span_length  # the default layout's groups (others are refused without pools)
    if f.name in ("key_schedule", "layout_rules"):
        return 1  # the earlier schedule (sg_jax.keys) or layout rules (Config.layout_rules)
    if kind is int:
        return (default or 2) + 3
    return 2.0 if default is None else default / 2


def _parse(argv):
    return cli.build_parser().parse_args(["train", "--out", "unused", *argv])


@pytest.mark.parametrize("name", [f.name for f in config_fields()])
def test_every_field_round_trips_through_flags_json_and_reproduce(name):
    f = next(f for f in config_fields() if f.name == name)
    config = dataclasses.replace(Config(), **{name: _other_value(f)})
    argv = config_to_argv(config)
    assert argv[0] in (f"--{name.replace('_', '-')}", f"--no-{name.replace('_', '-')}")
    assert config_from_args(_parse(argv)) == config
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_every_field_has_help_and_a_flag_in_train_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for f in config_fields():
        assert f.metadata["help"]
        assert f"--{f.name.replace('_', '-')}" in text


def test_objective_choices_come_from_the_registry():
    f = next(f for f in config_fields() if f.name == "objective")
    assert tuple(f.metadata["choices"]()) == tuple(REGISTRY)
    assert "nce" in REGISTRY
    with pytest.raises(ConfigError, match="objective must be one of softmax, ns, hs, nce, got 'bogus'"):
        Config(objective="bogus").validate()


@pytest.mark.parametrize("field,value,message", [
    ("window", 0, "window must be >= 1, got 0"),
    ("dim", 0, "dim must be >= 1, got 0"),
    ("seed", -1, "seed must be in [0, 2**64 - 1], got -1"),
    ("seed", 2**64, "seed must be in [0, 2**64 - 1]"),
    ("lr", float("nan"), "lr must be a positive number, got nan"),
    ("noise_power", -11.0, "noise_power must be in [-10, 10], got -11.0"),
    ("dim", 2.5, "dim must be int, got 2.5"),
])
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ConfigError) as e:
        dataclasses.replace(Config(), **{field: value}).validate()
    assert message in str(e.value)


def test_unknown_or_mistyped_fields_in_a_saved_config_are_refused():
    with pytest.raises(FormatError, match="unknown field .wibble."):
        Config.from_dict({**Config().to_dict(), "wibble": 1})
    with pytest.raises(FormatError, match="dim"):
        Config.from_dict({**Config().to_dict(), "dim": "ten"})
    older = {k: v for k, v in Config().to_dict().items() if k not in ("noise_power", "devices")}
    # fields added since 0.1.0 take their defaults in an older file (which trained on one device)
    assert Config.from_dict(older) == Config(devices=1)
    # a run saved before sync_combine existed summed the replicas' changes: it resumes summing
    before_combine = {k: v for k, v in Config(devices=2).to_dict().items() if k != "sync_combine"}
    assert Config.from_dict(before_combine) == Config(devices=2, sync_combine="sum")
    with pytest.raises(FormatError, match="lacks the field dim"):
        Config.from_dict({k: v for k, v in Config().to_dict().items() if k != "dim"})


def test_old_spelling_of_the_fixed_window_flag_still_works():
    assert config_from_args(_parse(["--fixed-window"])).dynamic_window is False


def test_reproduce_command_of_a_sweep_names_every_non_default_field(tmp_path):
    from sg_jax.study.report import reproduce_command

    config = Config(sg_form="context", dup_cap=8.0, noise_power=0.5, epochs=1, window=1, dim=4)
    record = {"config": config.to_dict(), "corpus": {"source": "toy:groups"}, "evaluation": {"restrict_vocab": 30_000},
              "window": 1, "dim": 4, "seed": 0}
    command = reproduce_command([record], tmp_path)
    for part in ("--sg-form context", "--dup-cap 8.0", "--noise-power 0.5", "--epochs 1"):
        assert part in command
    args = cli.build_parser().parse_args(command.split()[1:])
    from sg_jax.cli.sweep import sweep_from_args

    assert sweep_from_args(args).config(1, 4, 0) == config


def test_version_flag(capsys):
    import sg_jax

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"sg-jax {sg_jax.__version__}"


def test_auto_sync_interval_is_a_divisor_of_the_call():
    """sync_every auto: up to 64 steps on 2 devices, up to 8 on more, always syncing at fixed steps
    of every call (a divisor of steps_per_call); an explicit interval (a divisor, or refused:
    tests/test_run_faults.py) is kept."""
    assert Config().sync_every is None
    assert [Config().sync_interval(n) for n in (2, 3, 4, 8)] == [64, 8, 8, 8]
    assert Config(steps_per_call=100).sync_interval(2) == 50 and Config(steps_per_call=100).sync_interval(4) == 5
    assert Config(steps_per_call=16).sync_interval(2) == 16 and Config(steps_per_call=67).sync_interval(2) == 1
    assert Config(sync_every=4).sync_interval(2) == 4
    # a device's batch over 1,024 targets syncs proportionally more often; a split batch does not
    assert Config(batch_size=8192, split_batch=False).sync_interval(8) == 1
    assert Config(batch_size=8192, split_batch=False).sync_interval(2) == 8
    assert Config(batch_size=4096, split_batch=False).sync_interval(4) == 2
    assert Config(batch_size=8192).sync_interval(8) == 8 and Config(batch_size=2048).sync_interval(2) == 64
    assert Config(batch_size=8192, split_batch=False, sync_every=8).sync_interval(8) == 8
    assert Config(shard_tables=True).sync_interval(2) == 1  # every sharded step is synchronous
    assert resolve(Config(steps_per_call=16), 2).config == Config(steps_per_call=16, devices=2, sync_every=16,
                                                             pool_group=64, sync_combine="trust", batch_size=1024)
    # one device has nothing to sync: it records 1, as sharded tables do
    assert Config().sync_interval(1) == 1 and resolve(Config()).config.sync_every == 1
    assert resolve(Config(), 4).sync_every == 8 and resolve(resolve(Config(), 4).config, 4).config.sync_every == 8


def test_the_replicas_combine_under_the_trust_region_unless_it_is_off_or_a_rule_is_set():
    """sync_combine auto is trust under the trust region (the replicas' summed changes held as
    one device's step would hold them) and cap without it (trust needs the region); an explicit
    rule stays; a run records the resolved rule, and a config saved with cap, the default before
    auto, keeps it."""
    assert Config().sync_combine == "auto"
    assert Config().resolved_sync_combine == "trust"
    assert Config(trust_region=0.0).resolved_sync_combine == "cap"
    assert Config(sync_combine="mean").resolved_sync_combine == "mean"
    assert Config(shard_tables=True, trust_region=0.0).resolved_sync_combine == "sum"  # one synchronous step
    assert resolve(Config(), 4).config.sync_combine == "trust"
    assert resolve(Config(trust_region=0.0), 4).config.sync_combine == "cap"
    assert resolve(resolve(Config(), 4).config, 4).config == resolve(Config(), 4).config
    saved = Config(devices=4, sync_combine="cap").to_dict()
    assert Config.from_dict(saved).resolved_sync_combine == "cap"


def test_batch_size_auto_shrinks_with_the_rate_times_the_noise_words():
    """batch_size auto: 1,024 targets, halved while lr x k x batch exceeds 512 (k = 5 at lr 0.1),
    never below 256; hs draws no noise words; an explicit batch is taken as given. The run records
    the resolved batch, and a recorded config resolves unchanged."""
    assert Config().batch_size is None and Config().resolved_batch_size == 1024
    assert Config(arch="cbow").resolved_batch_size == 1024            # CBOW's own rate, 0.05, at k = 5
    assert [Config(negative=15, lr=lr).resolved_batch_size for lr in (0.025, 0.05, 0.1, 1.0)] == [1024, 512, 256, 256]
    assert [Config(negative=k, lr=0.05).resolved_batch_size for k in (5, 10, 11, 25)] == [1024, 1024, 512, 256]
    assert Config(lr=0.1).resolved_batch_size == 1024 and Config(objective="hs", lr=0.5).resolved_batch_size == 1024
    assert Config(objective="nce", negative=15, lr=0.1).resolved_batch_size == 256
    assert Config(negative=15, lr=0.1, batch_size=1024).resolved_batch_size == 1024
    recorded = resolve(Config(negative=15, lr=0.05)).config
    assert recorded.batch_size == 512 and resolve(recorded).config == recorded
    assert resolve(Config(negative=15, lr=0.05), 4).config.sync_every == 8   # the same interval as at 1,024
    # the step's batch follows: split over devices, and rounded to whole spans by the span layout
    from sg_jax.step import effective_batch_size
    assert effective_batch_size(Config(negative=15, lr=0.1), 10_000) == 256
    assert effective_batch_size(Config(negative=15, lr=0.05), 10_000, devices=2) == 256


def test_a_pool_group_the_run_would_not_use_is_refused():
    """A pool group other than the layout's own is refused where the noise words are not pooled:
    auto passes over the span layout (whose groups are its spans) to the padded one, which draws
    noise per target, so the group would be silently ignored. With pools it is kept; a run's
    recorded group (the layout's own) still resolves, pooled or not."""
    with pytest.raises(ConfigError, match="pool_group 32 has no effect: the run shares noise words 'target'"):
        resolve(Config(negative=15, pool_group=32))
    with pytest.raises(ConfigError, match="pool_group 16 has no effect"):
        resolve(Config(objective="hs", pool_group=16))
    pooled = resolve(Config(pool_group=32, window_layout="padded", share_negatives="pool"))
    assert (pooled.layout.name, pooled.sharing, pooled.config.pool_group) == ("padded", "pool", 32)
    for config in (Config(), Config(window_layout="padded"), Config(objective="hs")):
        recorded = resolve(config).config
        assert resolve(recorded).config == recorded


def test_the_duplicate_cap_is_off_under_the_trust_region_and_the_objectives_without_it():
    """hs capped its rows (its root is on every path) until the trust region bounded every row's
    move; under the rule the cap is off unless set, and a run without the rule (a config saved
    before it) keeps the objective's cap as it was trained."""
    from sg_jax.objectives import get_spec

    hs_cap = get_spec("hs").dup_cap
    assert hs_cap is not None
    assert Config(objective="hs").resolved_dup_cap is None
    assert Config(objective="hs", trust_region=0.0).resolved_dup_cap == hs_cap
    assert Config(objective="hs", dup_cap=8.0).resolved_dup_cap == 8.0
    old = Config(objective="hs").to_dict()
    del old["trust_region"]
    assert Config.from_dict(old).resolved_dup_cap == hs_cap


def test_cbow_trains_on_spans_and_a_cbow_run_saved_before_keeps_its_layout():
    """window_layout auto trains CBOW on spans with noise pools (layout rules 2); a CBOW config
    saved before the rules existed resolves as it was trained (padded, noise per target), so a run
    resumes on the layout it began with. Skip-gram resolves the same under both rules."""
    cbow = Config(arch="cbow")
    assert (cbow.layout, cbow.sharing) == ("span", "pool")
    old = cbow.to_dict()
    del old["layout_rules"]
    before = Config.from_dict(old)
    assert before.layout_rules == 1 and (before.layout, before.sharing) == ("padded", "target")
    # explicit choices are not the rules' to change
    assert Config.from_dict({**old, "window_layout": "span", "share_negatives": "pool"}).layout == "span"
    for rules in (1, 2):
        assert (Config(layout_rules=rules).layout, Config(layout_rules=rules).sharing) == ("span", "pool")
        assert Config(arch="cbow", objective="hs", layout_rules=rules).layout == "padded"
    with pytest.raises(ConfigError, match="layout_rules must be one of 1, 2"):
        Config(layout_rules=3).validate()
