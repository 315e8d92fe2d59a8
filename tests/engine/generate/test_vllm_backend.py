"""The `vllm` generator and its replica client against small HTTP servers in the test (the
real engines, owned by Ray actors, are in tests/integration/test_vllm_replicas.py): image
affinity, fail-over while a replica is down, errors naming every replica, the free-language
prompt (no program; the choice failure as feedback), the photo first in a multimodal message,
and the configuration rules of the free mode."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ConfigError, EngineConfig, GenerateConfig, load_config
from engine.generate.base import SpecView
from engine.generate.llm_client import LLMServerError
from engine.generate.replicas import ReplicaClient
from engine.generate.vllm_backend import VllmGenerator, check_mode
from engine.language.programs import P
from engine.scene.facts import describe
from engine.sources.ingest import ingest
from engine.stages import make_checkers
from engine.language.programs import Scene
from tests.coco_fixtures import make_case
from tests.engine.generate.test_openai_backend import SCENE, SIMPLE, FakeChatServer, completion, user_text
from tests.lang_scenes import LEX
from tests.vllm_server import free_port


@pytest.fixture
def two():
    servers = [FakeChatServer(), FakeChatServer()]
    yield servers
    for s in servers:
        s.close()


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"      # nothing listens there


def test_requests_of_one_image_stay_on_one_replica(two):
    client = ReplicaClient([s.base_url for s in two], retries=0, retry_backoff_s=0)
    for image in ("img-a", "img-b", "img-c", "img-d"):
        for _ in range(3):
            client.chat({"messages": []}, key=image)
    per_image = [len(s.chats()) for s in two]
    assert sum(per_image) == 12 and all(n % 3 == 0 for n in per_image)     # never split an image
    assert client.order("img-a") == client.order("img-a") and sorted(client.order("img-a")) == [0, 1]
    # without a key: round-robin
    before = [len(s.chats()) for s in two]
    for _ in range(4):
        client.chat({"messages": []})
    assert [len(s.chats()) - b for s, b in zip(two, before)] == [2, 2]


def test_a_dead_replica_is_bridged_by_the_others(two):
    live = two[0]
    client = ReplicaClient([dead_url(), live.base_url], retries=0, retry_backoff_s=0)
    for image in ("a", "b", "c", "d", "e"):
        assert client.chat({"messages": []}, key=image)["content"] == '{"instruction": "the dog"}'
    assert client.served == [0, 5] and len(live.chats()) == 5


def test_no_replica_answering_names_every_replica():
    urls = [dead_url(), dead_url()]
    client = ReplicaClient(urls, retries=1, retry_backoff_s=0)
    with pytest.raises(LLMServerError, match="no engine replica answered") as e:
        client.chat({"messages": []}, key="x")
    assert all(u in str(e.value) for u in urls) and "after 2 rounds" in str(e.value)
    with pytest.raises(LLMServerError, match="generate.endpoints is empty"):
        ReplicaClient([])


def test_a_bad_request_is_not_retried_on_other_replicas(two):
    two[0].reply = two[1].reply = lambda body: (400, {"error": "bad schema"})
    client = ReplicaClient([s.base_url for s in two], retries=3, retry_backoff_s=0)
    with pytest.raises(LLMServerError, match="HTTP 400"):
        client.chat({"messages": []}, key="x")
    assert len(two[0].chats()) + len(two[1].chats()) == 1


def vllm_cfg(urls, **kw) -> GenerateConfig:
    return GenerateConfig(backend="vllm", endpoints=urls, retry_backoff_s=0, timeout_s=10, **kw)


def test_free_mode_prompt_has_no_program_and_carries_the_choice_failure(two):
    two[0].reply = two[1].reply = lambda body: (200, completion('{"instruction": "the dark dog by the bench"}')
                                                | {"usage": {"prompt_tokens": 100, "completion_tokens": 9}})
    g = VllmGenerator(vllm_cfg([s.base_url for s in two], mode="free", prompt_version="free_v1"), LEX)
    assert (g.name, g.model, g.prompt_version) == ("vllm", "model", "free_v1")
    assert g.generate(SIMPLE, SCENE, 5, []) == "the dark dog by the bench"
    reason = "mllm_choice: picked option 2: the brown dog at right / middle (d2); the target is option 1: ..."
    g.generate(SIMPLE, SCENE, 5, [reason])
    first, second = two[0].chats() + two[1].chats()
    assert SIMPLE.program.dumps() not in user_text(first) and "Program" not in user_text(first)
    assert "colour black" in user_text(first)                    # the facts are there
    assert "picked the wrong one" not in user_text(first)
    assert "picked the wrong one" in user_text(second) and reason in user_text(second)
    assert g.requests == 2 and g.usage == {"prompt_tokens": 200, "completion_tokens": 18}


def test_modes_and_prompts_must_agree(two):
    urls = [s.base_url for s in two]
    with pytest.raises(ValueError, match="free-language prompt"):
        VllmGenerator(vllm_cfg(urls, mode="free"), LEX)               # instruct_v1 hands over the program
    with pytest.raises(ValueError, match="generate.mode=free"):
        VllmGenerator(vllm_cfg(urls, prompt_version="free_v1"), LEX)
    check_mode("express", "Program (JSON): $program_json", "instruct_v1")


def test_free_mode_config_requires_the_choice_check():
    free = ["generate.backend=vllm", "generate.mode=free", "generate.prompt_version=free_v1"]
    with pytest.raises(ConfigError, match="must require mllm_choice for concept, simple, complex, negative"):
        load_config(None, free)
    with pytest.raises(ConfigError, match="needs a model backend"):
        load_config(None, ["generate.mode=free"] + [f"check.policy.{t}=[mllm_choice]"
                                                    for t in ("concept", "simple", "complex", "negative")])
    cfg = load_config(Path(__file__).resolve().parents[3] / "infra" / "vllm" / "qwen3-vl-8b-free.yaml")
    assert cfg.generate.backend == "vllm" and cfg.generate.mode == "free" and cfg.generate.send_image
    assert all("mllm_choice" in names for names in cfg.check.policy.values())


def test_the_choice_check_uses_the_builds_engines(two):
    cfg = EngineConfig.model_validate({"generate": {"backend": "vllm", "endpoints": [s.base_url for s in two]},
                                       "check": {"extra": ["mllm_choice"]}})
    checker = make_checkers(cfg, LEX)["mllm_choice"]
    assert isinstance(checker.http, ReplicaClient) and checker.model == "fake-model"


def test_photo_comes_first_then_overlay_crop_and_text(two, tmp_path):
    res = ingest([make_case(tmp_path, n_images=1).write()])
    images, instances = res.images.assign(unit_id="u"), res.instances
    target = instances.sort_values("area").iloc[-1]
    facts, relations = describe(images, instances, EngineConfig().facts)
    scene = Scene.from_tables(target["image_id"], facts, relations, LEX.affordance_map())
    spec = SpecView("s-img", target["image_id"], "simple", "attribute", "1:1", (target["instance_id"],),
                    P())
    g = VllmGenerator(vllm_cfg([s.base_url for s in two], mode="free", prompt_version="free_v1", send_image=True), LEX)
    g.bind_unit(images, instances)
    body = g.request_body(spec, scene, 0, [])
    other = SpecView("s-img2", target["image_id"], "concept", "category", "1:1", (target["instance_id"],), P())
    body2 = g.request_body(other, scene, 0, ["mllm_choice: picked option 3"])
    parts, parts2 = body["messages"][1]["content"], body2["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"]
    # the photo (same for every spec of the image) leads: the shared prefix of the prefix cache
    assert parts[0] == parts2[0] and parts[1]["image_url"]["url"] != parts[0]["image_url"]["url"]
    assert body["messages"][0] == body2["messages"][0]
