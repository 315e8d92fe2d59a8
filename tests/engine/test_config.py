import pytest
from pydantic import ValidationError

from engine.config import EngineConfig, load_config


def test_defaults_are_embedded_cpu_offline():
    cfg = EngineConfig()
    assert cfg.generate.backend == "template"
    assert cfg.ray.address is None
    assert cfg.plan.min_area_frac == 0.01


def test_yaml_then_cli_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("plan:\n  min_area_frac: 0.05\ngenerate:\n  seed: 3\n")
    cfg = load_config(p, ["generate.seed=9", "check.policy.simple=[program]"])
    assert cfg.plan.min_area_frac == 0.05
    assert cfg.generate.seed == 9
    assert cfg.check.policy["simple"] == ["program"]


def test_unknown_keys_and_bad_values_are_errors(tmp_path):
    with pytest.raises(ValidationError, match="min_area_fracc"):
        load_config(None, ["plan.min_area_fracc=0.1"])
    with pytest.raises(ValidationError):
        load_config(None, ["ingest.unit_size=0"])
    with pytest.raises(ValueError, match="key.path=value"):
        load_config(None, ["nonsense"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("plan: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_config(bad)
