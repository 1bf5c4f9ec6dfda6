"""vLLM (fp32, its own environment) against our server: same greedy tokens, the agent loop.

The conformance suite against vLLM runs once, in lesson 07 (tests/lessons/test_vllm_lesson.py).

One vLLM process for the whole session (the `vllm_server` fixture: base model,
a LoRA adapter, tool calling); our server loads the same model and adapter.
Skipped with the reason where vLLM cannot be installed.
"""

from __future__ import annotations

import json

import openai
import pytest

from conftest import run_cli
from llm_deeper.deploy.parity import PROMPTS, first_divergence, greedy_reply

pytestmark = pytest.mark.slow
NEAR_TIE = 0.05  # top-1 minus top-2 log-probability below which fp32 rounding may flip a greedy choice
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def ours(vllm_server):
    """Our server with the same base model and adapter, fp32."""
    from llm_deeper.inference.engine import Engine
    from llm_deeper.serve.app import create_app
    from llm_deeper.serve.background import BackgroundServer

    engine = Engine.load("smollm2-135m-instruct", loras={vllm_server.adapter_name: str(vllm_server.adapter_dir)}, max_batch=2)
    with BackgroundServer(create_app(engine)) as server:
        yield openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed"), engine.name
    engine.close()


@pytest.mark.parametrize("which", ["base", "adapter"])
def test_greedy_replies_equal_token_for_token(vllm_server, ours, which, record_property):
    our_client, our_base = ours
    vllm = openai.OpenAI(base_url=vllm_server.base_url, api_key="not-needed")
    names = (vllm_server.model, our_base) if which == "base" else (vllm_server.adapter_name, vllm_server.adapter_name)
    report, bad = [], []
    for prompt in PROMPTS:
        theirs = greedy_reply(vllm, names[0], prompt, MAX_TOKENS)
        mine = greedy_reply(our_client, names[1], prompt, MAX_TOKENS)
        assert theirs.tokens, "vLLM returned no log-probabilities"
        split = first_divergence(theirs, mine)
        line = f"{which} {prompt!r}: " + ("equal, " + f"{len(mine.tokens)} tokens" if split is None else split.describe("vLLM", "ours"))
        report.append(line)
        if split is not None and not min(split.a_gap, split.b_gap) < NEAR_TIE:
            bad.append(line + f"\n  vLLM: {theirs.text!r}\n  ours: {mine.text!r}")
    print("\n".join(report))
    record_property("parity", report)
    assert not bad, "\n".join(bad)


def test_adapter_changes_the_answers_in_both_engines(vllm_server, ours):
    """Guards the parity test against vLLM silently serving the base model for the adapter's name."""
    vllm = openai.OpenAI(base_url=vllm_server.base_url, api_key="not-needed")
    base = greedy_reply(vllm, vllm_server.model, PROMPTS[0], MAX_TOKENS)
    tuned = greedy_reply(vllm, vllm_server.adapter_name, PROMPTS[0], MAX_TOKENS)
    assert base.top != tuned.top


def test_agent_completes_a_calculator_task_against_vllm(vllm_server, tmp_path):
    log = tmp_path / "steps.jsonl"
    result = run_cli("agent", "What is 17 * 23?", "--base-url", vllm_server.base_url, "--model", vllm_server.model,
                     "--tools", "calculator", "--tool-choice", "calculator", "--then", "none", "--max-new-tokens", "64",
                     "--log", str(log), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    steps = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("391" in json.dumps(step) for step in steps), output  # the calculator ran and its result came back
