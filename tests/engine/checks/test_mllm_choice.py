"""The `mllm_choice` checker against a small HTTP server in the test: the question (target,
distractors, "none of these", seeded order), the request (schema with the enum of option
numbers), verdicts (incl. negatives and unparseable answers), the outlined picture, and
UnitWorker wiring. The real server (vLLM) is in tests/integration/test_vllm_cpu.py."""
from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from engine.checks.mllm_choice import (
    COLOURS,
    NONE_TEXT,
    MLLMChoiceChecker,
    build_question,
    distractor_regions,
    load_choice_prompt,
    parse_choice,
)
from engine.config import EngineConfig, MLLMChoiceConfig, load_config
from engine.scene.facts import describe
from engine.generate.base import SpecView
from engine.sources.ingest import ingest
from engine.generate.llm_client import derive_seed
from engine.language.programs import P, Scene
from engine.stages import UnitWorker, make_checkers
from tests.coco_fixtures import make_case
from tests.lang_scenes import LEX, C, fact, scene_of


class ChoiceServer:
    """/v1/models and /v1/chat/completions; `answer(body) -> content string`."""

    def __init__(self, answer=None):
        self.answer = answer or (lambda body: '{"choice": 1}')
        self.bodies: list[dict] = []
        self.model_lookups = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, payload):
                raw = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                server.model_lookups += 1
                self._send({"object": "list", "data": [{"id": "judge", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.bodies.append(body)
                content = server.answer(body)
                self._send({"object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]})

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ChoiceServer()
    yield s
    s.close()


def checker(server, **kw) -> MLLMChoiceChecker:
    return MLLMChoiceChecker(MLLMChoiceConfig(base_url=server.base_url, retry_backoff_s=0, timeout_s=10, **kw), LEX)


def user_text(body: dict) -> str:
    content = body["messages"][1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def options_in(body: dict) -> dict[int, str]:
    """The numbered option lines of a request's user message."""
    out = {}
    for line in user_text(body).splitlines():
        head, _, rest = line.partition(". ")
        if head.isdigit():
            out[int(head)] = rest
    return out


# three dogs (two left, one right), a bench, a cat, a car
SCENE = scene_of([fact("d1", "dog", 0.2, 0.5, "black", area=3000), fact("d2", "dog", 0.3, 0.6, "brown", area=2000),
                  fact("d3", "dog", 0.8, 0.5, "white", area=1000), fact("b1", "bench", 0.45, 0.6, "brown", area=5000),
                  fact("c1", "cat", 0.5, 0.2, "white", area=800), fact("k1", "car", 0.9, 0.9, "red", area=9000)])
ONE = SpecView("s-one", "img", "simple", "attribute", "1:1", ("d1",), P(C("category", "dog"), C("color", "black")))
GROUP = SpecView("s-group", "img", "simple", "position", "1:N", ("d1", "d2"),
                 P(C("category", "dog"), C("position", "left")))
NEG = SpecView("s-neg", "img", "simple", "negative", "negative", (), P(C("category", "cat"), C("color", "red")))
NEG_HORSE = SpecView("s-neg2", "img", "concept", "negative", "negative", (), P(C("category", "horse")))


# ---- the question ---------------------------------------------------------------------------------
def test_one_target_same_category_distractors_come_first():
    assert distractor_regions(ONE, SCENE)[:2] == [("d2",), ("d3",)]       # the other dogs, bigger first
    assert distractor_regions(ONE, SCENE)[2:] == [("k1",), ("b1",), ("c1",)]
    q = build_question(ONE, SCENE, LEX, 3, seed=0)
    regions = [o.ids for o in q.options]
    assert sorted(regions[:-1]) == [("d1",), ("d2",), ("d3",), ("k1",)]
    assert regions[-1] == () and q.options[-1].text == NONE_TEXT
    assert q.option(q.target).ids == ("d1",)
    assert [o.number for o in q.options] == [1, 2, 3, 4, 5]


def test_group_target_confused_with_other_groups_and_its_members():
    regions = distractor_regions(GROUP, SCENE)
    assert regions[:4] == [("d1", "d2", "d3"), ("d3",), ("d1",), ("d2",)]  # all dogs, the rest, members
    assert ("d1", "d2") not in regions
    q = build_question(GROUP, SCENE, LEX, 3, seed=0)
    assert q.option(q.target).ids == ("d1", "d2")
    assert "a group of 2" in q.option(q.target).text


def test_negative_answer_is_none_and_near_misses_come_first():
    q = build_question(NEG, SCENE, LEX, 2, seed=0)
    assert q.option(q.target).ids == () and q.target == len(q.options) == 3
    assert ("c1",) in [o.ids for o in q.options]                   # the (white) cat: the near miss
    # an absent category: the biggest objects
    assert distractor_regions(NEG_HORSE, SCENE)[:2] == [("k1",), ("b1",)]


def test_order_is_seeded_and_reproducible():
    specs = [SpecView(f"s{k}", "img", "simple", "x", "1:1", ("d1",), ONE.program) for k in range(12)]
    first = [build_question(s, SCENE, LEX, 4, seed=3) for s in specs]
    assert first == [build_question(s, SCENE, LEX, 4, seed=3) for s in specs]
    other = [build_question(s, SCENE, LEX, 4, seed=4) for s in specs]
    assert [q.target for q in first] != [q.target for q in other]
    # the right answer does not sit in one place
    assert len({q.target for q in first}) > 2


def test_missing_target_is_a_clear_error():
    bad = SpecView("s-bad", "img", "simple", "x", "1:1", ("nope",), ONE.program)
    with pytest.raises(KeyError, match="s-bad.*nope"):
        build_question(bad, SCENE, LEX, 3, 0)


@pytest.mark.parametrize("content,expected", [
    ('{"choice": 2}', 2), ('{"choice":"3"}', 3), ('```json\n{"choice": 1}\n```', 1),
    ('{"choice": 9}', None), ('{"choice": true}', None), ('{"choice": 2', None), ("2", None), (None, None),
])
def test_parse_choice(content, expected):
    assert parse_choice(content, [1, 2, 3, 4]) == expected


# ---- the request ----------------------------------------------------------------------------------
def test_request_has_schema_enum_options_and_seed(server):
    c = checker(server, seed=5, max_tokens=20)
    assert (c.model, c.prompt_version) == ("judge", "choice_v1") and server.model_lookups == 1
    c.check("the black dog", ONE, SCENE)
    body = server.bodies[0]
    q = c.question(ONE, SCENE)
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["json_schema"]["name"] == "choice"
    assert schema["properties"]["choice"] == {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    assert schema["required"] == ["choice"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("judge", 0.0, 20)
    assert body["seed"] == derive_seed(5, "s-one", "the black dog")
    assert '"the black dog"' in user_text(body)
    opts = options_in(body)
    assert opts == {o.number: o.text for o in q.options}
    assert "black" in opts[q.target] and "dog" in opts[q.target] and opts[5] == NONE_TEXT
    # the prompt file's schema is left alone (the enum is per question)
    assert "enum" not in load_choice_prompt("choice_v1").json_schema["properties"]["choice"]


def test_structured_outputs_mode(server):
    c = checker(server, structured_output="structured_outputs")
    c.check("the dog", ONE, SCENE)
    body = server.bodies[0]
    assert "response_format" not in body
    assert body["structured_outputs"]["json"]["properties"]["choice"]["enum"] == [1, 2, 3, 4, 5]


# ---- verdicts -------------------------------------------------------------------------------------
def answering(pick):
    """A server that picks the option `pick(options) -> number` from the request's option lines."""
    return lambda body: json.dumps({"choice": pick(options_in(body))})


def test_target_picked_passes_and_other_picks_fail_with_the_option(server):
    c = checker(server)
    q = c.question(ONE, SCENE)
    other = next(o for o in q.options if o.ids == ("d3",))
    for number, verdict in [(q.target, "pass"), (other.number, "fail"), (len(q.options), "fail")]:
        server.answer = lambda body, n=number: json.dumps({"choice": n})
        r = c.check("the black dog", ONE, SCENE)
        assert r.verdict == verdict and r.detail["choice"] == number and r.detail["target"] == q.target
        assert r.detail["options"] == q.mapping() and r.detail["options"][str(q.target)] == ["d1"]
        assert r.reason.startswith(f"picked option {number}: ")
    r = c.check("the black dog", ONE, SCENE)                         # picked "none" for a real target
    assert "none of these" in r.reason and f"the target is option {q.target}: the black dog" in r.reason
    server.answer = lambda body: json.dumps({"choice": other.number})
    r = c.check("the white dog", ONE, SCENE)
    assert r.reason == (f"picked option {other.number}: the white dog at right / middle (d3); "
                        f"the target is option {q.target}: the black dog at left / middle (d1)")
    assert c.requests == len(server.bodies) == 5 and json.loads(json.dumps(r.to_json()))["detail"]["choice"] == other.number


def test_negatives_pass_only_on_none(server):
    c = checker(server)
    server.answer = answering(lambda opts: max(opts))                # "none of these" is last
    assert c.check("the red cat", NEG, SCENE).verdict == "pass"
    server.answer = answering(lambda opts: next(n for n, t in opts.items() if "cat" in t))
    r = c.check("the red cat", NEG, SCENE)
    assert r.verdict == "fail" and "(c1)" in r.reason and "nothing in the image should match" in r.reason


def test_group_needs_the_group_option(server):
    c = checker(server)
    server.answer = answering(lambda opts: next(n for n, t in opts.items() if t.startswith("a group of 2")))
    assert c.check("the dogs on the left", GROUP, SCENE).verdict == "pass"
    server.answer = answering(lambda opts: next(n for n, t in opts.items() if t.startswith("a group of 3")))
    r = c.check("the dogs on the left", GROUP, SCENE)
    assert r.verdict == "fail" and "the group of 3 dogs (d1, d2, d3)" in r.reason


@pytest.mark.parametrize("content", ['{"choice": 99}', '{"cho', "the first one", ""])
def test_unparseable_answers_are_unverifiable(server, content):
    server.answer = lambda body: content
    r = checker(server).check("the black dog", ONE, SCENE)
    assert r.verdict == "unverifiable" and "not one of options [1, 2, 3, 4, 5]" in r.reason
    assert r.detail["choice"] is None


# ---- the picture ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_images(tmp_path_factory):
    res = ingest([make_case(tmp_path_factory.mktemp("coco"), n_images=2).write()])
    return res.images.assign(unit_id="u-choice"), res.instances


def test_send_image_outlines_each_option_in_its_colour(server, two_images):
    images, instances = two_images
    facts, relations = describe(images, instances, EngineConfig().facts)
    image_id = images["image_id"].iloc[0]
    scene = Scene.from_tables(image_id, facts, relations, LEX.affordance_map())
    target = facts[(facts["image_id"] == image_id) & ~facts["iscrowd"]].sort_values("area").iloc[-1]
    spec = SpecView("s-img", image_id, "simple", "x", "1:1", (target["instance_id"],),
                    P(C("category", target["category"])))
    c = checker(server, send_image=True, distractors=2)
    with pytest.raises(RuntimeError, match="bind_unit"):
        c.check("the thing", spec, scene)
    c.bind_unit(images, instances)
    c.check("the thing", spec, scene)
    content = server.bodies[0]["messages"][1]["content"]
    assert content[0]["type"] == "text" and "outlined" in content[0]["text"]
    q = c.question(spec, scene)
    for o in q.options[:-1]:
        assert f"[outlined in {COLOURS[o.number - 1][0]}, labelled {o.number}]" in options_in(server.bodies[0])[o.number]
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    pic = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")).astype(int)
    from engine.sources.imageio import load_rgb
    from engine.scene.masks import decode
    rgb = load_rgb(images.set_index("image_id").loc[image_id, "uri"])
    assert pic.shape == rgb.shape
    inst = instances.set_index("instance_id")
    for o in q.options[:-1]:
        mask = decode(inst.loc[o.ids[0], "rle"], *rgb.shape[:2]).astype(bool)
        inner = mask.copy()   # the mask's border band, where the outline is
        for axis, step in ((0, 1), (0, -1), (1, 1), (1, -1)):
            inner &= np.roll(mask, step, axis)
        band = mask & ~inner
        colour = np.array(COLOURS[o.number - 1][1])
        # most border pixels are near the option's colour (JPEG noise, labels on top)
        near = np.abs(pic[band] - colour).max(axis=1) < 60
        assert near.mean() > 0.6, (o, near.mean())
        assert np.abs(rgb[band].astype(int) - colour).max(axis=1).__lt__(60).mean() < 0.3


# ---- wiring ---------------------------------------------------------------------------------------
def test_default_config_builds_no_model_checker():
    assert "mllm_choice" not in make_checkers(EngineConfig(), LEX)      # nothing contacted: offline


def test_base_url_falls_back_to_the_generators(server):
    cfg = load_config(None, [f"generate.base_url={server.base_url}", "check.extra=[mllm_choice]"])
    c = make_checkers(cfg, LEX)["mllm_choice"]
    assert c.http.base_url == server.base_url and c.model == "judge"
    with pytest.raises(ValueError):
        load_config(None, ["check.mllm.distractors=0"])


def test_unit_worker_records_extra_and_enforces_required(server, two_images):
    images, instances = two_images
    # always option 1: the right answer only where the seeded shuffle put it
    server.answer = lambda body: '{"choice": 1}'
    base = [f"check.mllm.base_url={server.base_url}", "check.mllm.retry_backoff_s=0", "check.max_rounds=1"]
    recorded = UnitWorker(load_config(None, base + ["check.extra=[mllm_choice]"])).run("u", images, instances)
    rows = recorded.instructions
    assert len(server.bodies) == len(rows) > 10
    verdicts = []
    for checks in rows["checks"]:
        mine = [c for c in json.loads(checks) if c["checker"] == "mllm_choice"]
        assert len(mine) == 1 and mine[0]["detail"]["choice"] == 1
        assert mine[0]["verdict"] == ("pass" if mine[0]["detail"]["target"] == 1 else "fail")
        verdicts.append(mine[0]["verdict"])
    assert {"pass", "fail"} <= set(verdicts)
    # recorded, not required: the template generator's texts are accepted as before
    assert rows["accepted"].sum() > len(rows) // 2
    assert not rows["reject_reason"].str.contains("mllm_choice").any()

    server.bodies.clear()
    policy = [f"check.policy.{k}=[program, mllm_choice]" for k in ("concept", "simple", "complex", "negative")]
    required = UnitWorker(load_config(None, base + policy)).run("u", images, instances).instructions
    for row in required.itertuples():
        mine = next(c for c in json.loads(row.checks) if c["checker"] == "mllm_choice")
        assert row.accepted == (mine["verdict"] == "pass" and row.reject_reason == "")
        if mine["verdict"] != "pass":
            assert "mllm_choice: picked option 1" in row.reject_reason


def test_people_are_described_without_a_colour():
    scene = scene_of([fact("p1", "person", 0.2, 0.5, "black"), fact("p2", "person", 0.8, 0.5, "white"),
                      fact("d1", "dog", 0.5, 0.5, "black")])
    spec = SpecView("s-p", "img", "simple", "x", "1:1", ("p1",), P(C("category", "person"), C("position", "left")))
    q = build_question(spec, scene, LEX, 2, seed=0)
    people = [o for o in q.options if o.ids and o.ids[0].startswith("p")]
    assert len(people) == 2 and not any("colour" in o.text or "black" in o.short or "white" in o.short
                                        for o in people)
    dog = next(o for o in q.options if o.ids == ("d1",))
    assert "colour black" in dog.text and dog.short.startswith("the black dog")
