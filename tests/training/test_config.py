"""Config choices fail when the config is built, naming the bad value and the accepted ones."""

from __future__ import annotations

import pytest
from rigserve.training.config import ConfigError, PurifyConfig, TrainConfig


@pytest.mark.parametrize(("key", "bad", "accepted"), [
    ("mode", "second_order", "lookahead, first_order, none"),
    ("val_present", "some", "subset, all"),
    ("params", "encoders", "all, head"),
])
def test_bad_purify_choice_fails_when_the_config_is_built(key, bad, accepted):
    message = rf"purify\.{key}='{bad}'; accepted: {accepted}"
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_sources(overrides=[f"purify.{key}={bad}"])
    with pytest.raises(ConfigError, match=message):
        PurifyConfig(**{key: bad})


def test_bad_purify_choice_in_a_yaml_file_fails_on_load(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("purify:\n  mode: lookahed\n")
    with pytest.raises(ConfigError, match=r"purify\.mode='lookahed'; accepted: lookahead"):
        TrainConfig.from_sources(path)


def test_a_valid_config_replaced_with_a_bad_choice_fails_too():
    cfg = TrainConfig.from_sources(overrides=["purify.val_present=all"])
    assert cfg.purify.val_present == "all"
    with pytest.raises(ConfigError, match=r"purify\.val_present='everything'"):
        cfg.replace(purify={"val_present": "everything"})
