import pytest

from cktat_core.config import Config, from_profile, parse_overrides, resolve, validate
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
