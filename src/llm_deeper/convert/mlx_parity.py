"""Is a converted adapter the same model in mlx-lm as in PEFT? Logits on a prompt, then greedy text.

Used by lesson inferencing_and_advanced/01, the speedrun's MLX stage and the
slow tests, so the figures they print come from one code path. Parity is
judged by logits (never by eye: a wrong rope_theta gives fluent nonsense).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class AdapterParity:
    """PEFT (transformers) vs mlx-lm with the converted adapter, on one prompt."""

    prompt_tokens: int  # tokens in the prompt
    max_logit_diff: float  # max |mlx-lm − PEFT| over every prompt position and vocab entry, with the adapter
    base_max_logit_diff: float  # the same without the adapter: the floor set by two fp32 implementations
    adapter_effect: float  # max |PEFT with − PEFT without|: how much the adapter moves the logits
    peft_ids: list[int]  # PEFT's greedy continuation
    mlx_ids: list[int]  # mlx-lm's greedy continuation
    peft_text: str  # decoded
    mlx_text: str  # decoded

    @property
    def same_greedy(self) -> bool:
        return self.peft_ids == self.mlx_ids


def compare_with_peft(model: str, peft_adapter: str | Path, mlx_adapter: str | Path, prompt_ids: list[int], max_new_tokens: int = 32) -> AdapterParity:
    """Logits and greedy continuations of PEFT + `peft_adapter` and mlx-lm + `mlx_adapter` on the same ids (fp32)."""
    import numpy as np
    import torch

    from ..finetune.merge import load_with_adapter
    from .lora_shapes import base_folder
    from .mlx_runtime import load_mlx, mlx_greedy, mlx_logits

    peft_model, tokenizer = load_with_adapter(model, peft_adapter)
    ids = torch.tensor([prompt_ids])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        tuned = peft_model(input_ids=ids).logits[0].float().numpy()
        with peft_model.disable_adapter():
            plain = peft_model(input_ids=ids).logits[0].float().numpy()
        out = peft_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
    peft_ids = [int(t) for t in out[0, len(prompt_ids):]]
    eos = set(tokenizer.eos_token_id if isinstance(tokenizer.eos_token_id, list) else [tokenizer.eos_token_id])
    if peft_ids and peft_ids[-1] in eos:  # mlx-lm's generator does not yield the end token; compare like with like
        peft_ids = peft_ids[:-1]
    del peft_model
    folder = base_folder(model)
    mlx_base, _ = load_mlx(folder)
    base_logits = mlx_logits(mlx_base, prompt_ids)
    del mlx_base
    mlx_model, mlx_tokenizer = load_mlx(folder, mlx_adapter)
    mlx_tuned = mlx_logits(mlx_model, prompt_ids)
    mlx_ids = mlx_greedy(mlx_model, mlx_tokenizer, prompt_ids, max_new_tokens)
    return AdapterParity(
        prompt_tokens=len(prompt_ids),
        max_logit_diff=float(np.abs(mlx_tuned - tuned).max()),
        base_max_logit_diff=float(np.abs(base_logits - plain).max()),
        adapter_effect=float(np.abs(tuned - plain).max()),
        peft_ids=peft_ids, mlx_ids=mlx_ids,
        peft_text=tokenizer.decode(peft_ids, skip_special_tokens=True), mlx_text=tokenizer.decode(mlx_ids, skip_special_tokens=True),
    )
