"""Shared test set-up: offline, loopback only, fast fixtures.

The suite proves the project works offline: hub access is switched off and any
connection to a non-loopback address fails the test that makes it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TQDM_DISABLE"] = "1"
# Converted models are cached across test runs in a folder of the checkout.
os.environ.setdefault("LLM_DEEPER_HOME", str(REPO / ".test-home"))

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            allowed = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = False
        if not allowed:
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {host!r}")
    return _real_connect(self, address)


socket.socket.connect = _loopback_only


def run_cli(*args: str, timeout: float = 300, input: str | None = None, env: dict | None = None,
            cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run `llm-deeper ARGS` in a subprocess of this interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "llm_deeper", *args],
        capture_output=True, text=True, timeout=timeout, input=input,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one torch thread is as fast, and far faster on a busy machine; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """An HF folder with a tiny random Llama and the byte-level ChatML tokenizer."""
    from llm_deeper.models.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """An HF folder with a tiny random GPT-2."""
    from llm_deeper.models.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"), arch="gpt2")


@pytest.fixture(scope="session")
def default_model():
    """The real embedded default model (fp32), converted once and cached."""
    from llm_deeper.models.loaders import load_model

    return load_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """vLLM (fp32 on CPU, its own environment) serving the default model, a LoRA adapter and tool calling.

    Started once per session; skipped with the reason where vLLM cannot run.
    """
    from vllm_support import start_vllm

    yield from start_vllm(tmp_path_factory)
