"""Shared test set-up: offline, loopback only, fast fixtures.

The suite proves the project works offline: hub access is switched off and any
connection to a non-loopback address fails the test that makes it.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TQDM_DISABLE"] = "1"
# OpenMP threads that wait for work sleep instead of spinning (GNU OpenMP, which torch's CPU wheels use; read when
# torch loads, so set before any import of it; subprocesses inherit it). A spinning waiter holds a core that a
# descheduled partner thread needs: with more runnable threads than cores (a server beside its client, vLLM beside
# our engine, two DDP ranks, or a busy machine), every parallel op waits out a time slice. The default model's
# 24-token forward at 2 threads on 2 cores at load ~9: 6.6 s default, 0.21 s passive (1 thread: 0.3-0.8 s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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


@dataclass
class PrepareRun:
    """`llm-deeper models prepare` twice in a fresh artifact home: the first converts, the second finds the cache."""

    home: Path  # the fresh LLM_DEEPER_HOME
    first: subprocess.CompletedProcess  # the converting run
    second: subprocess.CompletedProcess  # the run that finds the cache
    models_listing: list[str]  # what <home>/models held after the first run (no temp folder may be left)


@pytest.fixture(scope="session")
def prepare_in_fresh_home(tmp_path_factory) -> PrepareRun:
    """The CLI converts the embedded GGUF in a fresh home, once per session.

    On a fresh checkout its folder also becomes the session's cached model (see
    `default_model_converted_once`), so the suite converts the GGUF once, not twice.
    """
    home = tmp_path_factory.mktemp("fresh-home")
    env = {"LLM_DEEPER_HOME": str(home)}
    first = run_cli("models", "prepare", env=env)
    listing = sorted(p.name for p in (home / "models").iterdir()) if (home / "models").is_dir() else []
    second = run_cli("models", "prepare", env=env)
    return PrepareRun(home, first, second, listing)


@pytest.fixture(scope="session", autouse=True)
def default_model_converted_once(request):
    """When this session runs real-model tests and the checkout's cache is cold (CI's fresh clone), convert once.

    The conversion is `prepare_in_fresh_home`'s (which the prepare test checks anyway); its folder is copied
    into the session's home, so no later test or subprocess converts the GGUF again (~15 s each on 2 cores).
    """
    if not any(item.get_closest_marker("slow") for item in request.session.items):
        return
    from llm_deeper.models.embedded import cached_folder, is_prepared
    from llm_deeper.models.registry import resolve

    spec = resolve("smollm2-135m-instruct").spec
    if is_prepared(spec):
        return
    run = request.getfixturevalue("prepare_in_fresh_home")
    source = run.home / "models" / spec.name
    if run.first.returncode != 0 or is_prepared(spec):
        return  # the prepare test reports the failure; the library converts on first use as before
    target = cached_folder(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    shutil.copytree(source, staging, dirs_exist_ok=True)  # into a sibling first: a copy cut short never looks complete
    staging.chmod(0o755)
    if target.exists():  # an older or unfinished conversion (is_prepared said no)
        shutil.rmtree(target)
    staging.rename(target)


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
