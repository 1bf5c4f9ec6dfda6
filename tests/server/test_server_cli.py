"""`llm-deeper serve` as users run it: a subprocess on a real port, plus its input errors."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import openai

from conftest import REPO, run_cli
from llm_deeper.ports import free_port
from llm_deeper.serve.background import wait_until_healthy


def test_serve_subprocess_with_lora_and_api_key(tiny_llama_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    from llm_deeper.models.tiny import tiny_llama

    get_peft_model(tiny_llama(), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], init_lora_weights=False)).save_pretrained(tmp_path / "ad")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "llm_deeper", "serve", "--model", str(tiny_llama_dir), "--port", str(port),
                                "--lora", f"mine={tmp_path / 'ad'}", "--api-key", "k1", "--max-concurrency", "2",
                                "--max-request-bytes", "4096", "--no-prefix-cache"],
                               cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, process)
        client = openai.OpenAI(base_url=url + "/v1", api_key="k1", max_retries=0)
        models = client.models.list().data
        assert [m.id for m in models] == [tiny_llama_dir.name, "mine"]
        assert [m.to_dict()["root"] for m in models] == [tiny_llama_dir.name, "mine"]  # names, never the adapter's folder
        assert str(tmp_path) not in httpx.get(url + "/v1/models", headers={"Authorization": "Bearer k1"}).text
        reply = client.chat.completions.create(model="mine", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
        assert reply.usage.completion_tokens <= 3 and reply.model == "mine"
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/health").json()["prefix_cache"] == {"enabled": False}  # --no-prefix-cache
        again = client.chat.completions.create(model="mine", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
        assert again.usage.prompt_tokens_details.cached_tokens == 0
        too_big = httpx.post(url + "/v1/chat/completions", headers={"Authorization": "Bearer k1"},
                             json={"model": "mine", "messages": [{"role": "user", "content": "x" * 5000}]})
        assert too_big.status_code == 413 and "4,096 bytes" in too_big.json()["error"]["message"]
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_input_errors_are_one_line(tmp_path):
    result = run_cli("serve", "--lora", "no-equals-sign", timeout=60)
    assert result.returncode == 2 and "--lora expects NAME=DIR" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    result = run_cli("serve", "--model", str(tmp_path / "missing"), timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
