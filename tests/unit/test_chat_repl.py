"""The chat loop keeps history across turns and clears it on /reset."""

import io

from llm_deeper import chat_repl
from llm_deeper.inference.sampling import SamplingConfig


def test_history_grows_and_resets(tiny_llama_dir, monkeypatch):
    seen = []

    from llm_deeper.inference.engine import Engine

    original = Engine.encode

    def recording(self, prompt, tools=None):
        seen.append([m["role"] for m in prompt])
        return original(self, prompt, tools)

    monkeypatch.setattr(Engine, "encode", recording)
    out = io.StringIO()
    chat_repl.run_chat(str(tiny_llama_dir), SamplingConfig(max_new_tokens=2), system="be brief", stdin=io.StringIO("a\nb\n/reset\nc\n"), stdout=out)
    assert seen == [
        ["system", "user"],
        ["system", "user", "assistant", "user"],
        ["system", "user"],
    ]
    assert out.getvalue().count("bot> ") == 3
