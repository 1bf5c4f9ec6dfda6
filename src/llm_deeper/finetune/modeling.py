"""The model a run trains: every weight (full), PEFT LoRA adapters, or LoRA on a 4-bit base (QLoRA).

`TokenLoss` computes the summed next-token loss over labelled positions only:
it runs the transformer body, then the output head on just those positions.
Assistant tokens are a minority of a chat conversation, and the head is the
widest matrix of a small model (576 × 49152 for the default), so skipping it
elsewhere saves much of the step's time and memory without changing the loss.
"""

from __future__ import annotations

from ..errors import UserError
from .config import FinetuneConfig


def require_qlora_support() -> None:
    """QLoRA needs a CUDA GPU and bitsandbytes; say so plainly otherwise."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise UserError("--qlora needs a CUDA GPU (bitsandbytes 4-bit kernels run on CUDA only); on this machine use --method lora without --qlora")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("--qlora needs the bitsandbytes package: pip install bitsandbytes")


def load_base(config: FinetuneConfig, local_rank: int = 0):
    """(model, tokenizer) of the base model, ready to train on this process's device."""
    from ..models.loaders import load_model

    if config.qlora:
        return load_base_4bit(config, local_rank)
    loaded = load_model(config.model, dtype=config.base_dtype)
    from ..train.distributed import pick_device

    model = loaded.model.to(pick_device("auto", local_rank))
    return model, loaded.tokenizer


def load_base_4bit(config: FinetuneConfig, local_rank: int):
    """The base in NF4 4-bit with bf16 compute, prepared for k-bit training (PEFT's recipe)."""
    require_qlora_support()
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from ..models.loaders import model_folder, quiet_transformers
    from ..models.registry import resolve

    quiet_transformers()
    folder = model_folder(resolve(config.model))
    if folder is None:
        raise UserError("--qlora needs an HF model folder or registry name, not a .gguf file")
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, device_map={"": local_rank}, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return prepare_model_for_kbit_training(model), tokenizer


def build_trainable(config: FinetuneConfig, local_rank: int = 0):
    """(model to train, tokenizer): all weights trainable (full) or a PEFT LoRA model."""
    import torch

    model, tokenizer = load_base(config, local_rank)
    if config.gradient_checkpointing:
        # Non-reentrant checkpointing works with frozen inputs (LoRA); the cache is useless while training.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    torch.manual_seed(config.seed)  # LoRA's A matrices are drawn here: same seed, same start
    if config.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model.train(), tokenizer
    from peft import LoraConfig, get_peft_model

    depth = model.config.num_hidden_layers
    if config.layers is not None and config.layers > depth:
        raise UserError(f"--layers {config.layers}: {config.model} has only {depth} decoder layers")
    # With only the top layers adapted, nothing below them needs a gradient, so autograd stops there.
    covered = None if config.layers in (None, depth) else list(range(depth - config.layers, depth))
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=config.target_modules,
                      layers_to_transform=covered, task_type="CAUSAL_LM")
    import warnings

    try:
        with warnings.catch_warnings():  # PEFT calls a transformers method transformers has renamed; not our concern
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(model, lora)
    except ValueError as exc:
        raise UserError(f"--target-modules {','.join(config.target_modules)}: {str(exc).splitlines()[0]}") from exc
    return peft_model.train(), tokenizer


def causal_lm(model):
    """The transformers *ForCausalLM inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decoder_layers(loss_module) -> list:
    """The transformer blocks inside TokenLoss → (PEFT →) *ForCausalLM → body: what FSDP shards one by one."""
    body = causal_lm(loss_module.model).base_model
    return list(getattr(body, "layers", []))


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters, tied weights counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
    return trainable, total


LOSS_CHUNK = 256  # labelled positions whose logits exist at once when a batch has more


def make_token_loss(model, padding_mask: bool = False, decision_weight: float = 1.0, decision_tokens: int = 2):
    """A module whose forward(input_ids, attention_mask, labels) → (summed loss, labelled tokens).

    In training mode the first `decision_tokens` labels of each assistant turn count `decision_weight` times
    (`decision_weights`); in eval mode every label counts once, so held-out losses stay comparable across runs.

    It is built on demand so torch stays out of module import time. `padding_mask=True` passes the
    mask to attention anyway: the same loss, slower (bench/bench_lora_step.py compares the two).
    """
    import torch
    import torch.nn.functional as F

    class TokenLoss(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model  # registered, so DDP sees (and syncs) its parameters
            self.decision_weight = decision_weight  # loss weight of each assistant turn's first labels (training only)
            self.decision_tokens = decision_tokens  # how many first labels of a turn that weight covers

        def forward(self, input_ids, attention_mask, labels):
            causal = causal_lm(self.model)
            # Rows are right-padded (collate) and attention is causal, so no real token ever attends to a
            # pad: without the mask, attention takes its fused causal kernel instead of a (batch, heads, T, T)
            # mask, with the same loss (pads carry no labels).
            hidden = causal.base_model(input_ids=input_ids, attention_mask=attention_mask if padding_mask else None).last_hidden_state
            targets = labels[:, 1:]
            keep = targets != -100
            weights = None
            if self.training and self.decision_weight != 1.0:
                weights = decision_weights(labels, self.decision_weight, self.decision_tokens)[keep]
            head, hidden, targets = causal.get_output_embeddings(), hidden[:, :-1][keep], targets[keep]
            if len(targets) <= LOSS_CHUNK:
                return head_loss(head, hidden, targets, weights), keep.sum()
            # Many labelled tokens: fp32 logits, log-softmax and gradient take ~12 bytes per token per
            # vocabulary entry (600 MB for 1,024 tokens × 49k); in chunks recomputed in backward, one chunk lives.
            from torch.utils.checkpoint import checkpoint

            loss = sum(checkpoint(head_loss, head, hidden[i:i + LOSS_CHUNK], targets[i:i + LOSS_CHUNK],
                                  None if weights is None else weights[i:i + LOSS_CHUNK], use_reentrant=False)
                       for i in range(0, len(targets), LOSS_CHUNK))
            return loss, keep.sum()

    def head_loss(head, hidden, targets, weights=None):
        """Summed (weighted) cross-entropy of the output head's logits, computed in fp32."""
        if weights is None:
            return F.cross_entropy(head(hidden).float(), targets, reduction="sum")
        return (F.cross_entropy(head(hidden).float(), targets, reduction="none") * weights).sum()

    return TokenLoss(model)


def decision_weights(labels, weight: float, tokens: int):
    """Per-target loss weights, shape labels[:, 1:]: `weight` on the first `tokens` labels of each labelled span, else 1.

    A span (an assistant turn: its labels are preceded by an ignored position) opens with the decision the
    model must get right first: `<tool_call>` or the first words of a text answer. The sum is still divided
    by the number of labelled tokens, so a weight > 1 also raises the step's effective learning rate a little.
    """
    import torch

    targets, before = labels[:, 1:], labels[:, :-1]
    labelled = targets != -100
    opening = labelled & (before == -100)
    mark = opening.clone()
    for shift in range(1, tokens):
        moved = torch.zeros_like(opening)
        moved[:, shift:] = opening[:, :-shift]
        mark |= moved & labelled
    weights = torch.ones(targets.shape, dtype=torch.float32, device=labels.device)
    weights[mark] = weight
    return weights
