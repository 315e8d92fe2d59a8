"""The `openai` generator against a small HTTP server in the test (http.server in a thread):
what it sends (prompt, schema, seed, key), how it reads answers, retries and errors, images,
and UnitWorker with generate.backend=openai. The real server (vLLM) is in
tests/integration/test_vllm_cpu.py."""
from __future__ import annotations

import base64
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from engine.config import EngineConfig, GenerateConfig, load_config
from engine.generate.base import SpecView
from engine.generate.openai_backend import GeneratorServerError, OpenAIGenerator, parse_instruction, request_seed
from engine.generate.prompt import PROMPT_DIR, load_prompt
from engine.scene.facts import describe
from engine.sources.ingest import ingest
from engine.language.programs import P, Scene
from engine.stages import UnitWorker, make_generator
from tests.coco_fixtures import make_case
from tests.lang_scenes import LEX, C, fact, scene_of
from tests.vllm_server import free_port


class FakeChatServer:
    """Answers /v1/models and /v1/chat/completions with `reply(body) -> (status, payload)`."""

    def __init__(self, reply=None, models=("fake-model",)):
        self.reply = reply or (lambda body: (200, completion('{"instruction": "the dog"}')))
        self.models = models
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status, payload):
                raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                server.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers),
                                        "body": body})
                self._send(*server.reply(body))

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def chats(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(content, finish="stop"):
    return {"id": "c1", "object": "chat.completion", "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}]}


@pytest.fixture
def server():
    s = FakeChatServer()
    yield s
    s.close()


def gen_cfg(base_url: str, **kw) -> GenerateConfig:
    return GenerateConfig(backend="openai", base_url=base_url, retry_backoff_s=0, timeout_s=10, **kw)


def user_text(body: dict) -> str:
    content = body["messages"][1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


# a dog left of a bench, a second dog on the right, a cat
SCENE = scene_of([fact("d1", "dog", 0.2, 0.5, "black"), fact("d2", "dog", 0.8, 0.5, "brown"),
                  fact("b1", "bench", 0.45, 0.6, "brown"), fact("c1", "cat", 0.5, 0.2, "white")],
                 {("d1", "left_of", "b1"), ("b1", "right_of", "d1")})
SIMPLE = SpecView("s-simple", "img", "simple", "attribute", "1:1", ("d1",),
                  P(C("category", "dog"), C("color", "black"),
                    C("relation", rel="left_of", obj=P(C("category", "bench")))))
COMPLEX = SpecView("s-complex", "img", "complex", "affordance", "1:1", ("c1",), P(C("affordance", "purrs")))


# ---- the request ----------------------------------------------------------------------------------
def test_request_carries_schema_seed_program_and_feedback(server, monkeypatch):
    monkeypatch.setenv("SAM3I_TEST_KEY", "sk-123")
    g = OpenAIGenerator(gen_cfg(server.base_url, model="m1", api_key_env="SAM3I_TEST_KEY",
                                temperature=0.3, max_tokens=77), LEX)
    assert (g.name, g.model, g.prompt_version) == ("openai", "m1", "instruct_v1")
    assert g.generate(SIMPLE, SCENE, 5, []) == "the dog"
    feedback = ["lexical: unknown words ['qux']", "program: selects nothing"]
    g.generate(SIMPLE, SCENE, 5, feedback)
    first, second = server.chats()
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-123"
    schema = load_prompt("instruct_v1").schema
    assert first["response_format"] == {"type": "json_schema",
                                        "json_schema": {"name": "instruction", "schema": schema, "strict": True}}
    assert "structured_outputs" not in first and "guided_json" not in first
    assert (first["model"], first["temperature"], first["max_tokens"]) == ("m1", 0.3, 77)
    # reproducible per (seed, spec, round), different in a later round
    assert first["seed"] == request_seed(5, "s-simple", 0)
    assert second["seed"] == request_seed(5, "s-simple", 2) != first["seed"]
    system, user = first["messages"][0]["content"], user_text(first)
    for tier in ("concept", "simple", "complex"):
        assert f"- {tier}:" in system
    assert "Tier: simple" in user and "Cardinality: 1:1" in user
    assert SIMPLE.program.dumps() in user                       # the program, as JSON
    assert "colour black" in user and "left of another object" in user and "'bench'" in user
    assert "left of #2 bench" in user                           # the target's relation, by label
    assert "rejected" not in user
    for reason in feedback:
        assert reason in user_text(second)
    assert user_text(second).startswith(user.split("Answer with JSON")[0].rstrip()[:200])


def test_complex_prompt_forbids_the_category_nouns(server):
    g = OpenAIGenerator(gen_cfg(server.base_url, model="m"), LEX)
    g.generate(COMPLEX, SCENE, 0, [])
    user = user_text(server.chats()[0])
    forbidden = re.search(r"Do not use these words[^:]*: (.*)", user).group(1).split(", ")
    assert set(forbidden) == LEX.nouns_of("cat") and "cat" in forbidden
    # the affordance is explained with the lexicon's own phrase, which the lexical checker parses
    assert any(p.standalone in user for p in LEX.phrases("purrs"))


@pytest.mark.parametrize("mode", ["structured_outputs", "none"])
def test_other_structured_output_modes(server, mode):
    g = OpenAIGenerator(gen_cfg(server.base_url, model="m", structured_output=mode), LEX)
    g.generate(SIMPLE, SCENE, 0, [])
    body = server.chats()[0]
    assert "response_format" not in body
    if mode == "structured_outputs":   # vLLM's extra field; not the removed guided_json
        assert body["structured_outputs"] == {"json": load_prompt("instruct_v1").schema}
    else:
        assert "structured_outputs" not in body


def test_model_defaults_to_the_servers_first_model():
    s = FakeChatServer(models=("served-a", "served-b"))
    try:
        g = OpenAIGenerator(gen_cfg(s.base_url), LEX)
        assert g.model == "served-a"
        g.generate(SIMPLE, SCENE, 0, [])
        assert s.chats()[0]["model"] == "served-a"
    finally:
        s.close()


# ---- answers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("content,expected", [
    ('{"instruction": "  the black dog  "}', "the black dog"),
    ('{"instruction":"a\x06b"}', "a\x06b"),                        # raw control char: grammar engines allow it
    ('```json\n{"instruction": "the cat"}\n```', "the cat"),
    ('{"instruction": "the dog', '{"instruction": "the dog'),       # cut off: returned raw
    ('{"text": "the dog"}', '{"text": "the dog"}'),                  # wrong field: raw
    ('["the dog"]', '["the dog"]'),
    ("the dog on the left", "the dog on the left"),
    (None, ""),
])
def test_parse_instruction(content, expected):
    assert parse_instruction(content) == expected


def test_unparseable_answer_is_returned_raw_and_counted(server):
    server.reply = lambda body: (200, completion('{"instr', finish="length"))
    g = OpenAIGenerator(gen_cfg(server.base_url, model="m"), LEX)
    assert g.generate(SIMPLE, SCENE, 0, []) == '{"instr'
    assert g.requests == 1


# ---- errors and retries ---------------------------------------------------------------------------
def test_transient_errors_are_retried_then_succeed(server):
    answers = iter([(503, {"error": "busy"}), (429, {"error": "slow down"}),
                    (200, completion('{"instruction": "the cat"}'))])
    server.reply = lambda body: next(answers)
    g = OpenAIGenerator(gen_cfg(server.base_url, model="m", retries=2), LEX)
    assert g.generate(SIMPLE, SCENE, 0, []) == "the cat"
    assert len(server.chats()) == 3 and g.requests == 1


def test_persistent_5xx_names_the_server(server):
    server.reply = lambda body: (500, {"error": "boom"})
    g = OpenAIGenerator(gen_cfg(server.base_url, model="m", retries=1), LEX)
    with pytest.raises(GeneratorServerError, match=re.escape(server.base_url) + ".*2 tries.*HTTP 500"):
        g.generate(SIMPLE, SCENE, 0, [])
    assert len(server.chats()) == 2


def test_client_errors_are_not_retried(server):
    server.reply = lambda body: (400, {"error": {"message": "model 'nope' does not exist"}})
    g = OpenAIGenerator(gen_cfg(server.base_url, model="nope", retries=3), LEX)
    with pytest.raises(GeneratorServerError, match="HTTP 400.*does not exist"):
        g.generate(SIMPLE, SCENE, 0, [])
    assert len(server.chats()) == 1


def test_unreachable_server_is_named_after_retries():
    url = f"http://127.0.0.1:{free_port()}/v1"            # nothing listens there
    with pytest.raises(GeneratorServerError, match=re.escape(url) + r".*GET /models after 3 tries.*Connect"):
        OpenAIGenerator(gen_cfg(url, retries=2), LEX)


def test_non_completion_answer_is_a_server_error(server):
    server.reply = lambda body: (200, {"object": "error", "message": "?"})
    g = OpenAIGenerator(gen_cfg(server.base_url, model="m"), LEX)
    with pytest.raises(GeneratorServerError, match="not a chat completion"):
        g.generate(SIMPLE, SCENE, 0, [])


# ---- prompt files ---------------------------------------------------------------------------------
def test_prompt_files_are_versioned_by_name(tmp_path):
    assert load_prompt("instruct_v1").version == "instruct_v1"
    with pytest.raises(FileNotFoundError, match="instruct_v9.*available: .*instruct_v1"):
        load_prompt("instruct_v9")
    text = (PROMPT_DIR / "instruct_v1.yaml").read_text()
    (tmp_path / "mine_v2.yaml").write_text(text)            # still says version: instruct_v1
    with pytest.raises(ValueError, match="declares version 'instruct_v1', expected 'mine_v2'"):
        load_prompt("mine_v2", tmp_path)
    (tmp_path / "bad_v1.yaml").write_text(text.replace("version: instruct_v1", "version: bad_v1")
                                          .replace("Tier: $tier", "Tier: $tierr"))
    with pytest.raises(ValueError, match="bad_v1.yaml: template 'user'.*tierr"):
        load_prompt("bad_v1", tmp_path)


def test_config_selects_the_backend(server):
    assert EngineConfig().generate.backend == "template"
    cfg = load_config(None, ["generate.backend=openai", f"generate.base_url={server.base_url}",
                             "generate.model=m", "generate.max_tokens=64"])
    g = make_generator(cfg, LEX)
    assert isinstance(g, OpenAIGenerator) and g.cfg.max_tokens == 64
    with pytest.raises(ValueError):
        load_config(None, ["generate.backend=vllm-magic"])


# ---- UnitWorker on real photos ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_images(tmp_path_factory):
    res = ingest([make_case(tmp_path_factory.mktemp("coco"), n_images=2).write()])
    return res.images.assign(unit_id="u-openai"), res.instances


def concept_answerer(body):
    """A stand-in model: names the category for concept-tier prompts, babbles otherwise."""
    user = user_text(body)
    prog = json.loads(re.search(r"Program \(JSON\): (.*)", user).group(1))
    cat = next((c["value"] for c in prog if c["kind"] == "category"), None)
    if "Tier: concept" in user and cat and "Cardinality: 1:1" in user:
        return 200, completion(json.dumps({"instruction": cat}))
    return 200, completion('{"instruction": "zxq vrb"}')


def test_unit_worker_with_the_openai_backend(server, two_images):
    server.reply = concept_answerer
    images, instances = two_images
    cfg = load_config(None, ["generate.backend=openai", f"generate.base_url={server.base_url}",
                             "generate.retry_backoff_s=0", "check.max_rounds=2"])
    worker = UnitWorker(cfg)
    res = worker.run("u-openai", images, instances)
    rows = res.instructions
    assert len(rows) == len(res.specs) > 0
    # every candidate was one request; lineage names the backend, served model and prompt
    assert len(server.chats()) == rows["rounds"].sum() == worker.generator.requests
    assert set(rows["backend"]) == {"openai"} and set(rows["model"]) == {"fake-model"}
    assert set(rows["prompt_version"]) == {"instruct_v1"}
    acc = rows[rows["accepted"]]
    assert len(acc) and set(acc["tier"]) == {"concept"} and (acc["rounds"] == 1).all()
    rej = rows[~rows["accepted"]]
    assert len(rej) and (rej["rounds"] == 2).all()
    assert rej["reject_reason"].str.contains("lexical: ").all()
    # requests come spec after spec, round after round: the second round of each rejected spec
    # asks again (first seed from round 0) with the first round's reasons
    chats, k = server.chats(), 0
    for row in rows.itertuples():
        mine, k = chats[k:k + row.rounds], k + row.rounds
        assert mine[0]["seed"] == request_seed(cfg.generate.seed, row.spec_id, 0)
        assert "rejected by the checkers" not in user_text(mine[0])
        if not row.accepted:
            assert "rejected by the checkers" in user_text(mine[1]) and "- lexical: " in user_text(mine[1])
            assert mine[1]["seed"] != mine[0]["seed"]


def test_send_image_attaches_tinted_overlay_and_crop(server, two_images):
    images, instances = two_images
    target = instances.sort_values("area").iloc[-1]
    spec = SpecView("s-img", target["image_id"], "simple", "attribute", "1:1", (target["instance_id"],),
                    P(C("category", target["category"])))
    facts, relations = describe(images, instances, EngineConfig().facts)
    scene = Scene.from_tables(target["image_id"], facts, relations, LEX.affordance_map())
    g = OpenAIGenerator(gen_cfg(server.base_url, model="m", send_image=True), LEX)
    with pytest.raises(RuntimeError, match="bind_unit"):
        g.generate(spec, scene, 0, [])
    g.bind_unit(images, instances)
    g.generate(spec, scene, 0, [])
    content = server.chats()[0]["messages"][1]["content"]
    assert content[0]["type"] == "text" and "tinted" in content[0]["text"]
    urls = [p["image_url"]["url"] for p in content[1:]]
    assert len(urls) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    overlay, crop = (np.asarray(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))).convert("RGB"))
                     for u in urls)
    from engine.sources.imageio import load_rgb
    from engine.scene.masks import decode
    rgb = load_rgb(images.set_index("image_id").loc[target["image_id"], "uri"])
    mask = decode(target["rle"], *rgb.shape[:2]).astype(bool)
    scale = overlay.shape[0] / rgb.shape[0]
    assert abs(scale - overlay.shape[1] / rgb.shape[1]) < 0.01
    small = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(overlay.shape[1::-1])) > 127
    redness = lambda a: a[..., 0].astype(float) - a[..., 1:].astype(float).mean(-1)
    orig = np.asarray(Image.fromarray(rgb).resize(overlay.shape[1::-1]))
    # the target got redder, the rest did not change beyond JPEG noise
    assert redness(overlay)[small].mean() > redness(orig)[small].mean() + 40
    assert abs(redness(overlay)[~small].mean() - redness(orig)[~small].mean()) < 5
    ys, xs = np.nonzero(mask)
    assert crop.shape[0] <= (ys.max() - ys.min()) * 1.5 + 20 and crop.shape[0] >= ys.max() - ys.min()
