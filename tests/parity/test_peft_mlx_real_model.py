"""PEFT ⇄ mlx-lm on the real default model with real adapters (slow).

1. A PEFT LoRA adapter (seeded, B far from 0), converted by our converter: mlx-lm's logits equal PEFT's on the same ids,
   and the same 16 greedy tokens.
2. An adapter trained by mlx-lm's own LoRA trainer, converted to PEFT: equal logits in PEFT, and our server with it
   loaded by name (the real `openai` client over a socket) answers with mlx-lm's greedy text.

Kept cheap on purpose: the `mlx[cpu]` wheel multiplies with the reference BLAS (~0.1 s per token through the
model on 2 cores), so prompts and training conversations are short chats, mlx-lm's trainer skips its validation
passes (nothing here reads them: two forward passes, ~20 s on a busy machine), the server runs in this process
(`serve --lora` as a process is tested in tests/server/test_server_cli.py), and everything is made once per module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openai
import pytest

from llm_deeper.convert.mlx_runtime import mlx_status

MLX_OK, MLX_REASON = mlx_status()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not MLX_OK, reason=MLX_REASON)]
MODEL = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
# Greedy tokens compared. The logits are compared at every position (< 1e-3), which catches a wrong scale or
# orientation at the first one; 32 tokens cost ~15 s more of PEFT generate and mlx-lm logits on 2 busy cores.
GREEDY_TOKENS = 16
# two short conversations for mlx-lm's trainer (a tool conversation is ~300 tokens: ~30 s a step with mlx's CPU BLAS)
TRAIN_CHATS = [
    [{"role": "user", "content": "Name a primary colour."}, {"role": "assistant", "content": "Red is a primary colour."}],
    [{"role": "user", "content": "What is two plus two?"}, {"role": "assistant", "content": "Two plus two is four."}],
]


@dataclass
class RealModelParity:
    """Everything the module's tests check, made once."""

    converted: object  # peft_to_mlx's result for the seeded PEFT adapter
    parity: object  # compare_with_peft on QUESTION, 16 tokens
    trained_config: dict  # the PEFT adapter_config.json converted from mlx-lm's adapter
    train_losses: list[float]  # mlx-lm's reported training losses
    trained_logit_diff: float  # max |Δlogit| mlx-lm (its adapter) vs PEFT (the converted one) on QUESTION
    trained_effect: float  # max |Δlogit| the mlx-trained adapter causes in PEFT
    mlx_answer: str  # mlx-lm's greedy text with its adapter (its own generator)
    served_models: list[str]  # /v1/models of our server with the adapter loaded as "mlx"
    served_answer: str  # the served greedy reply
    served_tokens: int  # its completion tokens


def seeded_peft_adapter(base, out: Path) -> object:
    """A PEFT LoRA adapter on every attention projection of every layer, A and B drawn from a seeded generator."""
    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:  # PEFT starts B at 0 (ΔW = 0 would prove nothing); small enough that the model still answers
                param.copy_(torch.randn(param.shape, generator=generator) * (0.02 if "lora_B" in name else 0.05))
    peft_model.save_pretrained(out)
    return peft_model.eval()


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> RealModelParity:
    import torch
    from peft import PeftModel

    from llm_deeper.chat_format import prompt_ids
    from llm_deeper.convert.lora_shapes import base_folder
    from llm_deeper.convert.mlx_parity import compare_with_peft
    from llm_deeper.convert.mlx_runtime import load_mlx, mlx_greedy, mlx_logits
    from llm_deeper.convert.mlx_to_peft import mlx_to_peft
    from llm_deeper.convert.peft_to_mlx import peft_to_mlx
    from llm_deeper.data.sft import ChatExample, write_jsonl
    from llm_deeper.convert.mlx_lora import MlxLoraConfig, train_mlx_lora
    from llm_deeper.inference.engine import Engine
    from llm_deeper.models.loaders import load_model
    from llm_deeper.serve.app import create_app
    from llm_deeper.serve.background import BackgroundServer

    home = tmp_path_factory.mktemp("mlx-real")
    loaded = load_model(MODEL)  # a copy of our own: PEFT wraps its layers in place
    ids = prompt_ids(loaded.tokenizer, QUESTION)

    # 1. a PEFT adapter, converted to mlx-lm, compared on the same ids
    peft_model = seeded_peft_adapter(loaded.model, home / "peft")
    converted = peft_to_mlx(home / "peft", home / "peft-as-mlx", model=MODEL)
    parity = compare_with_peft(MODEL, home / "peft", converted.folder, ids, max_new_tokens=GREEDY_TOKENS, peft_model=peft_model)
    base = peft_model.unload()  # the plain model again, for the second adapter

    # 2. an adapter trained by mlx-lm, converted to PEFT, compared, then served by our server
    train = write_jsonl(home / "chats" / "train.jsonl", [ChatExample(m) for m in TRAIN_CHATS])
    valid = write_jsonl(home / "chats" / "valid.jsonl", [ChatExample(TRAIN_CHATS[0])])
    run = train_mlx_lora(MlxLoraConfig(model=MODEL, train=train, valid=valid, output=home / "mlx-trained", iters=2, batch_size=1,
                                       num_layers=4, rank=8, scale=2.0, learning_rate=1e-2, max_seq_length=128, val_batches=0),
                           log=lambda _: None)
    peft_dir, trained_config = mlx_to_peft(run.folder, home / "mlx-as-peft", model=MODEL)
    trained = PeftModel.from_pretrained(base, peft_dir).eval()
    with torch.inference_mode():
        theirs = trained(input_ids=torch.tensor([ids])).logits[0].numpy()
        with trained.disable_adapter():
            plain = trained(input_ids=torch.tensor([ids])).logits[0].numpy()
    del trained, base, peft_model, loaded
    mlx_model, mlx_tokenizer = load_mlx(base_folder(MODEL), run.folder)
    ours = mlx_logits(mlx_model, ids)
    mlx_answer = mlx_tokenizer.decode(mlx_greedy(mlx_model, mlx_tokenizer, ids, 16))
    del mlx_model

    # what `llm-deeper serve --model MODEL --lora mlx=DIR` builds: the engine (fp32) with the adapter by name, behind the app
    with Engine.load(MODEL, loras={"mlx": peft_dir}, max_batch=1) as engine, BackgroundServer(create_app(engine)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        served_models = [m.id for m in client.models.list().data]
        reply = client.chat.completions.create(model="mlx", messages=QUESTION, max_tokens=16, temperature=0)
    assert reply.model == "mlx"
    return RealModelParity(converted, parity, trained_config, run.train_losses, float(np.abs(ours - theirs).max()), float(np.abs(theirs - plain).max()),
                           mlx_answer, served_models, reply.choices[0].message.content or "", reply.usage.completion_tokens)


def test_converted_peft_adapter_gives_peft_logits_and_greedy_text_in_mlx_lm(real):
    converted, parity = real.converted, real.parity
    assert converted.num_layers == 30 and converted.rank == 8 and converted.scale == 2.0 and not converted.padded
    print(f"\nreal model, PEFT adapter in mlx-lm: max |Δlogit| {parity.max_logit_diff:.2e} over {parity.positions} positions "
          f"(adapter effect {parity.adapter_effect:.2e}); greedy {parity.mlx_text!r}")
    assert parity.adapter_effect > 0.05  # the adapter really moves the logits
    assert parity.max_logit_diff < 1e-3
    assert len(parity.peft_ids) == GREEDY_TOKENS, parity.peft_text  # a whole continuation to compare
    assert parity.same_greedy, (parity.peft_text, parity.mlx_text)


def test_mlx_trained_adapter_in_peft_gives_mlx_logits(real):
    print(f"\nmlx-trained adapter in PEFT: max |Δlogit| {real.trained_logit_diff:.2e} (adapter effect {real.trained_effect:.2e}); "
          f"losses {real.train_losses}")
    assert len(real.train_losses) == 2
    assert real.trained_config["layers_to_transform"] == [26, 27, 28, 29] and sorted(real.trained_config["target_modules"]) == ["q_proj", "v_proj"]
    assert real.trained_effect > 1e-3  # two steps moved B away from its zero start
    assert real.trained_logit_diff < 1e-3


def test_mlx_trained_adapter_is_served_by_name_with_mlx_lm_greedy_text(real):
    assert "mlx" in real.served_models and real.served_tokens > 0
    assert real.served_answer.strip() and real.served_answer.strip() == real.mlx_answer.strip(), (real.served_answer, real.mlx_answer)
