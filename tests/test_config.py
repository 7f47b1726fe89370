from dataclasses import fields

import pytest

from cktat_core.config import GROUPS, Config, from_profile, parse_overrides, resolve, validate
from cktat_core.errors import ConfigError


def test_paper_profile_is_the_spec_default():
    c = resolve(from_profile("paper"))
    assert (c.dataset, c.model, c.epochs, c.batch_size, c.lr, c.momentum, c.weight_decay) == \
        ("cifar10", "resnet18", 110, 128, 0.1, 0.9, 5e-4)
    assert [round(f * c.epochs) for f in c.lr_milestones] == [100, 105]
    assert c.eps == pytest.approx(8 / 255) and c.alpha == pytest.approx(2 / 255) and c.attack_steps == 10
    assert (c.tau, c.beta, c.teacher_weight, c.tau_squared, c.detach_clean, c.init_from_teacher) == \
        (5.0, 6.0, 1.0, False, False, True)
    assert c.augment is True


def test_l2_default_budget():
    c = resolve(from_profile("paper", {"norm": "l2"}))
    assert c.eps == pytest.approx(128 / 255) and c.alpha == pytest.approx(32 / 255)


def test_overrides_are_typed_and_fractions_work():
    o = parse_overrides(["tau=2", "eps=8/255", "init_from_teacher=false", "model=wrn34_10",
                         "lr_milestones=0.5,0.75", "teacher_lr=none"])
    assert o == {"tau": 2.0, "eps": pytest.approx(8 / 255), "init_from_teacher": False, "model": "wrn34_10",
                 "lr_milestones": (0.5, 0.75), "teacher_lr": None}


@pytest.mark.parametrize("item,field", [("tau=0", "tau"), ("tau=-1", "tau"), ("beta=-0.5", "beta"),
                                        ("eps=1.5", "eps"), ("eps=-0.1", "eps"), ("model=vgg", "model"),
                                        ("method=foo", "method"), ("dataset=mnist", "dataset"),
                                        ("epochs=-1", "epochs"), ("norm=l1", "norm")])
def test_bad_values_name_the_field(item, field):
    with pytest.raises(ConfigError) as e:
        from_profile("smoke", parse_overrides([item]))
    assert e.value.field == field
    assert str(e.value).startswith(field + ":")


@pytest.mark.parametrize("item", ["tau=abc", "epochs=1.5", "init_from_teacher=maybe", "nosuchfield=1", "tau"])
def test_unparseable_values(item):
    with pytest.raises(ConfigError):
        parse_overrides([item])


def test_unknown_profile():
    with pytest.raises(ConfigError) as e:
        from_profile("huge")
    assert "smoke" in str(e.value) and "paper" in str(e.value)


def test_dict_round_trip():
    c = from_profile("smoke", {"tau": 3.0})
    assert Config.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError):
        Config.from_dict({"nonsense": 1})
    validate(Config.from_dict(c.to_dict()))


def test_fingerprint_groups_keep_the_fields_that_checkpoints_record():
    """The groups give the same fingerprint fields as the lists that wrote the existing checkpoints, so those
    runs still resume."""
    from cktat_core import train

    assert set(train.DATA_KEYS) == {"dataset", "val_size", "train_limit", "augment", "seed", "batch_size",
                                    "momentum", "weight_decay", "lr_milestones", "lr_gamma",
                                    # added later, at defaults that change nothing (`_changed_settings`)
                                    "train_per_file", "lr_schedule", "warmup"}
    assert set(train.TEACHER_KEYS) == set(train.DATA_KEYS) | {"teacher_model", "model", "width", "teacher_epochs",
                                                              "teacher_lr", "teacher_kind"}
    assert set(train.THREAT_KEYS) == {"norm", "eps", "alpha", "alpha_ratio", "attack_steps", "random_start",
                                      "attack_loss", "val_attack_steps"}
    assert train.RUNTIME_KEYS == {"progress", "eval_steps", "eval_alpha_ratio", "eval_batch_size", "test_limit",
                                  "device", "data_dir", "download", "compile"}  # the test attack: not the training
    # phase 2: every other field, but of the per-method settings only those of the run's method
    everything = {f.name for f in fields(Config)} - train.RUNTIME_KEYS
    assert set(train.student_keys(Config())) == everything - train.METHOD_KEYS | {
        "tau", "beta", "teacher_weight", "tau_squared", "detach_clean", "teacher_label"}  # CKTAT, the default
    assert set(train.student_keys(Config(method="pgdat"))) == everything - train.METHOD_KEYS
    assert set(train.student_keys(Config(method="trades"))) == everything - train.METHOD_KEYS | {"beta"}


def _bad_value(f):
    """A value outside any range: NaN for numbers, an unknown word for choices."""
    default = f.default
    if isinstance(default, tuple):
        return (float("nan"),)
    if isinstance(default, str):
        return "no-such-value"
    return float("nan")


@pytest.mark.parametrize("name", [f.name for f in fields(Config) if f.metadata["allowed"] is not None])
def test_every_ranged_field_rejects_a_value_outside_its_range(name):
    f = {f.name: f for f in fields(Config)}[name]
    assert f.metadata["group"] in GROUPS
    with pytest.raises(ConfigError) as e:
        validate(Config().replace(**{name: _bad_value(f)}))
    assert e.value.field == name and str(e.value).startswith(f"{name}: must be")
    validate(Config())  # every default is allowed


def test_each_bound_is_open_or_closed_as_written():
    from cktat_core.config import above, at_least, within

    half_open = within(0, 1, "(]")
    assert [half_open.test(v) for v in (0, 1e-9, 1, 1 + 1e-9)] == [False, True, True, False]
    assert [within(0, 1, "[)").test(v) for v in (0, 1)] == [True, False]
    assert [within(0, 1, "()").test(v) for v in (0, 0.5, 1)] == [False, True, False]
    assert [above(0).test(v) for v in (0, 1e-9)] == [False, True]
    assert [at_least(2).test(v) for v in (1.999, 2)] == [False, True]
    assert not any(b.test(v) for b in (half_open, above(0), at_least(0)) for v in (float("inf"), True, "1"))
    assert half_open.words() == "must be in (0, 1]" and at_least(2).words() == "must be >= 2"


@pytest.mark.parametrize("item,message", [
    ("beta=-1", "beta: must be >= 0"), ("kd_rho=2", "kd_rho: must be in [0, 1]"),
    ("raat_eta=0", "raat_eta: must be in (0, 1]"), ("momentum=1", "momentum: must be in [0, 1)"),
    ("lr_milestones=0.5,1.5", "lr_milestones: must be fractions in (0, 1]"),
    ("batch_size=1", "batch_size: must be >= 2"),
    ("teacher_model=vgg", "teacher_model: must be empty or one of"), ("device=tpu", "device: must be auto, cpu, cuda"),
    ("teacher_kind=big", "teacher_kind: must be empty or one of clean, robust")])
def test_range_messages_name_the_field_and_what_is_allowed(item, message):
    with pytest.raises(ConfigError) as e:
        from_profile("smoke", parse_overrides([item]))
    assert str(e.value).startswith(message)


def test_teacher_rules_that_tie_fields_together():
    with pytest.raises(ConfigError) as e:
        from_profile("smoke", {"method": "trades", "teacher_kind": "robust"})
    assert str(e.value).startswith("teacher_kind: must be empty: trades has no clean or robust teacher")
    with pytest.raises(ConfigError) as e:
        from_profile("smoke", {"method": "cktat", "teacher_model": "resnet18"})
    assert e.value.field == "init_from_teacher"
    from_profile("smoke", {"method": "cktat", "teacher_model": "resnet18", "init_from_teacher": False})
