"""One vLLM server per test session (start-up takes about a minute), and the LoRA adapter both engines serve.

Used through the `vllm_server` fixture in conftest.py. On a machine where vLLM
cannot be installed (not Linux, or the CPU build on a non-x86 machine) the
fixture skips its tests with the reason; on Linux x86-64 it builds vLLM's own
environment the first time (about 80 s, more on a busy machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ADAPTER_NAME = "lora"


@dataclass
class VllmSession:
    """What the tests need to reach vLLM and compare with our server."""

    base_url: str  # http://127.0.0.1:PORT/v1
    model: str  # served name of the base model
    adapter_name: str  # served name of the LoRA adapter
    adapter_dir: Path  # the PEFT folder both engines load
    log_path: Path  # vLLM's own log


def make_test_adapter(out: Path, seed: int = 0) -> Path:
    """A LoRA on the default model's attention and MLP projections with random, non-zero factors.

    Parity only needs both engines to apply the same adapter; B is scaled so the
    model still answers in sentences (a zero B, PEFT's default, would test nothing).
    """
    if (out / "adapter_model.safetensors").is_file():
        return out
    import torch
    from peft import LoraConfig, get_peft_model

    from llm_deeper.models.loaders import load_model

    torch.manual_seed(seed)
    base = load_model("smollm2-135m-instruct").model
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
                        init_lora_weights=False, lora_dropout=0.0)
    peft_model = get_peft_model(base, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.1)
    peft_model.save_pretrained(str(out))
    return out


def start_vllm(tmp_path_factory):
    """Generator for the session fixture: start vLLM with the adapter and tools, yield, stop."""
    import pytest

    from llm_deeper.deploy.env import unsupported_reason
    from llm_deeper.deploy.launch import VllmConfig, VllmServer

    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    adapter = make_test_adapter(Path(tmp_path_factory.mktemp("vllm-adapter")) / ADAPTER_NAME)
    config = VllmConfig(model="smollm2-135m-instruct", loras={ADAPTER_NAME: str(adapter)}, tools=True, max_model_len=4096, max_num_seqs=8)
    log = Path(tmp_path_factory.mktemp("vllm-log")) / "vllm.log"
    with VllmServer(config, log_path=log) as server:
        yield VllmSession(server.base_url, server.name, ADAPTER_NAME, adapter, log)
