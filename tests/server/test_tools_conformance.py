"""The tool-calling conformance suite passes in full against our own server (tiny random model),
and `llm-deeper agent --base-url` drives a tool loop through it."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli

from llm_deeper.inference.engine import Engine
from llm_deeper.models.tiny import save_tiny_model
from llm_deeper.serve.app import create_app
from llm_deeper.serve.background import BackgroundServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a busy 2-core machine: one thread is much faster
    # A long context: the tool prompt is ~1,000 byte-level tokens.
    folder = save_tiny_model(tmp_path_factory.mktemp("tiny-llama-4k"), arch="llama", context=4096)
    engine = Engine.load(str(folder), max_batch=2, max_queue=4)
    with BackgroundServer(create_app(engine, default_max_tokens=64)) as srv:
        yield srv
    engine.close()
    torch.set_num_threads(threads)


def test_conformance_command_prints_the_table_and_exit_code(server):
    result = run_cli("tools", "conformance", "--base-url", server.url + "/v1", timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]  # the table names each failed check
    assert "12/12 checks passed" in result.stdout and "parameterless tool" in result.stdout and "max_tokens inside a call" in result.stdout
    down = run_cli("tools", "conformance", "--base-url", "http://127.0.0.1:9/v1", "--model", "x", timeout=120)
    assert down.returncode == 2 and "cannot reach" in down.stderr and "Traceback" not in down.stderr  # nothing listening: one line, exit 2


def test_agent_command_against_the_server(server, tmp_path):
    log = tmp_path / "steps.jsonl"
    result = run_cli("agent", "What is 2 + 2?", "--base-url", server.url + "/v1", "--tools", "calculator,get_current_time",
                     "--max-new-tokens", "48", "--log", str(log), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode in (0, 1), output  # a random model may ramble to the step limit, never crash
    assert "step 1" in result.stdout and "→" in result.stdout, output
    assert log.read_text().count('"step"') >= 1
    wrong = run_cli("agent", "hi", "--base-url", server.url + "/v1", "--model", "no-such-model", "--tools", "calculator", timeout=120)
    assert wrong.returncode == 2 and "HTTP 404" in wrong.stderr and "Traceback" not in wrong.stderr
