import pytest

from engine.config import ConfigError, EngineConfig, load_config


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
    with pytest.raises(ConfigError, match="min_area_fracc"):
        load_config(None, ["plan.min_area_fracc=0.1"])
    with pytest.raises(ConfigError, match="ingest.unit_size"):
        load_config(None, ["ingest.unit_size=0"])
    with pytest.raises(ValueError, match="key.path=value"):
        load_config(None, ["nonsense"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("plan: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_config(bad)


# ---------------------------------------------------------------- issue 9, problem 9


@pytest.mark.parametrize("override, key", [
    ("ingest.unit_size=true", "ingest.unit_size"),               # a bool is not 1
    ("ingest.unit_size='8'", "ingest.unit_size"),                # nor is a string
    ("plan.relations=[left_of, beyond]", "plan.relations"),      # unknown relation
    ("facts.small_frac=-0.01", "facts.small_frac"),
    ("facts.small_frac=0.5", "facts"),                           # above large_frac
    ("check.policy.simple=[program, lexicl]", "check.policy"),   # unknown checker
    ("check.policy.tiny=[program]", "check.policy"),             # unknown tier
    ("check.extra=[nope]", "check.extra"),
    ("ray.stages.unit.concurrency=0", "ray.stages.unit.concurrency"),
    ("ray.stages.unit.num_cpus=-1", "ray.stages.unit.num_cpus"),
    ("ray.stages.unit.num_gpus=-1", "ray.stages.unit.num_gpus"),
    ("ray.max_retries=-3", "ray.max_retries"),
])
def test_nonsense_config_is_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"\n  {key.replace('.', chr(92) + '.')}\b"):
        load_config(None, [override])


def test_sensible_edge_values_are_accepted():
    cfg = load_config(None, ["ray.stages.unit.num_cpus=0", "ray.max_retries=0", "facts.small_frac=0",
                             "plan.relations=[above, 'on']", "check.extra=[mllm_choice]", "release.val_fraction=0"])
    assert cfg.ray.stages["unit"].num_cpus == 0 and cfg.plan.relations == ["above", "on"]


def test_config_file_problems_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    tag = tmp_path / "tag.yaml"
    tag.write_text("plan: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="tag.yaml: not valid YAML"):
        load_config(tag)
    typed = tmp_path / "typed.yaml"
    typed.write_text("ingest:\n  unit_size: true\n")
    with pytest.raises(ConfigError, match=r"in .*typed.yaml:\n  ingest.unit_size"):
        load_config(typed)


@pytest.mark.parametrize("module", ["engine.build", "flows.build_dataset"])
def test_config_errors_on_the_command_line_have_no_traceback(tmp_path, module):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    tag = tmp_path / "tag.yaml"
    tag.write_text("ingest: !custom {unit_size: 2}\n")
    env = {**os.environ, "PYTHONPATH": str(repo)}
    cases = [["--config", str(tmp_path)], ["--config", str(tag)], ["--set", "ray.stages.unit.concurrency=0"]]
    if module == "engine.build":  # (the flow's command line starts slowly: the same loader, fewer cases)
        cases += [["--config", str(tmp_path / "missing.yaml")], ["--set", "ingest.unit_size=true"]]
    for extra in cases:
        proc = subprocess.run([sys.executable, "-m", module, "--source", str(tmp_path), "--output", str(tmp_path / "o"),
                               *extra], capture_output=True, text=True, env=env, cwd=repo, timeout=120)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: "), (extra, proc.stderr)
