"""Is a converted adapter the same model in mlx-lm as in PEFT? Logits on a prompt and its greedy continuation.

Used by lesson inferencing_and_advanced/01, the speedrun's MLX stage and the
slow tests, so the figures they print come from one code path. Parity is
judged by logits (never by eye: a wrong rope_theta gives fluent nonsense).

One forward pass of each side does the whole check: PEFT generates the greedy
continuation, then both models read prompt + continuation once. Every logit is
compared, and mlx-lm's argmax at each generated position is the token its greedy
decoder would pick there, so equal argmaxes mean equal greedy text. This matters
on Linux: the `mlx[cpu]` wheel multiplies matrices with the reference BLAS
(about 35x slower than torch here), so every token mlx-lm reads costs ~0.1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class AdapterParity:
    """PEFT (transformers) vs mlx-lm with the converted adapter, on one prompt."""

    prompt_tokens: int  # tokens in the prompt
    positions: int  # positions compared: the prompt and the continuation but its last token
    max_logit_diff: float  # max |mlx-lm − PEFT| over every compared position and vocab entry, with the adapter
    adapter_effect: float  # max |PEFT with − PEFT without|: how much the adapter moves the logits
    peft_ids: list[int]  # PEFT's greedy continuation (its end-of-turn token included, if it stopped)
    mlx_ids: list[int]  # mlx-lm's greedy pick at each step, up to and including the first that differs
    peft_text: str  # decoded
    mlx_text: str  # decoded

    @property
    def same_greedy(self) -> bool:
        return self.peft_ids == self.mlx_ids


def compare_with_peft(model: str, peft_adapter: str | Path, mlx_adapter: str | Path, prompt_ids: list[int], max_new_tokens: int = 32,
                      peft_model=None) -> AdapterParity:
    """Logits and greedy continuations of PEFT + `peft_adapter` and mlx-lm + `mlx_adapter` on the same ids (fp32).

    `peft_model`: an already loaded PeftModel with the adapter (saves a load); else it is loaded from `peft_adapter`.
    """
    import numpy as np
    import torch

    from ..finetune.merge import load_with_adapter
    from ..models.loaders import load_tokenizer
    from .lora_shapes import base_folder
    from .mlx_runtime import load_mlx, mlx_logits

    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1: the greedy check needs a continuation")
    if peft_model is None:
        peft_model, tokenizer = load_with_adapter(model, peft_adapter)
    else:
        tokenizer = load_tokenizer(model)
    ids = torch.tensor([prompt_ids])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        # PEFT's own generate is the oracle: it is the thing compared, and on a ~300-token prompt our engine was no faster here
        out = peft_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
        peft_ids = [int(t) for t in out[0, len(prompt_ids):]]
        read = list(prompt_ids) + peft_ids[:-1]  # the last token is predicted, never read
        tuned = peft_model(input_ids=torch.tensor([read])).logits[0].float().numpy()
        with peft_model.disable_adapter():
            plain = peft_model(input_ids=torch.tensor([read])).logits[0].float().numpy()
    mlx_model, _ = load_mlx(base_folder(model), mlx_adapter)
    mlx_tuned = mlx_logits(mlx_model, read)
    del mlx_model
    picks = [int(t) for t in mlx_tuned[len(prompt_ids) - 1:].argmax(axis=-1)]  # mlx-lm's greedy choice after each prefix
    first_miss = next((i for i, (a, b) in enumerate(zip(picks, peft_ids)) if a != b), None)
    mlx_ids = picks if first_miss is None else picks[:first_miss + 1]
    return AdapterParity(
        prompt_tokens=len(prompt_ids),
        positions=len(read),
        max_logit_diff=float(np.abs(mlx_tuned - tuned).max()),
        adapter_effect=float(np.abs(tuned - plain).max()),
        peft_ids=peft_ids, mlx_ids=mlx_ids,
        peft_text=tokenizer.decode(peft_ids, skip_special_tokens=True), mlx_text=tokenizer.decode(mlx_ids, skip_special_tokens=True),
    )
