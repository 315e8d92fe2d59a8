"""When a run pays for Prefect and Ray (issue 16): the command line runs the flow in process
unless a Prefect API is configured, and units go to Ray only when enough are pending or a
cluster or GPU stage asks for it."""
from __future__ import annotations

from engine.config import load_config
from flows.cli import orchestrator
from flows.common import inline, inline_run, use_ray


def test_units_go_to_ray_only_when_it_pays(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cfg = load_config()
    assert not use_ray(cfg, ["u-1"])
    assert use_ray(cfg, ["u-1", "u-2"])
    assert not use_ray(load_config(None, ["ray.min_units=3"]), ["u-1", "u-2"])
    assert use_ray(load_config(None, ["ray.address=ray://head:10001"]), ["u-1"])
    assert use_ray(load_config(None, ["ray.stages.unit.num_gpus=1"]), ["u-1"])
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert use_ray(cfg, ["u-1"])


def test_auto_runs_inline_without_a_prefect_api(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: None}):
        assert orchestrator("auto") == "inline"
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        assert orchestrator("auto") == "prefect"
    assert orchestrator("prefect") == "prefect" and orchestrator("inline") == "inline"
    assert not inline()
    with inline_run():
        assert inline()
    assert not inline()
