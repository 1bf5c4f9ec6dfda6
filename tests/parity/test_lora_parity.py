"""scratch/lora.py vs PEFT: same A and B → same outputs and merged weights."""

from __future__ import annotations

import copy

import pytest
import torch

from llm_deeper.scratch.lora import LoRALinear, inject_lora, lora_layers, merge_lora, trainable_report, unload_lora, unmerge_lora

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def twins(base, rank=4, alpha=8.0, targets=TARGETS, seed=1):
    """Our LoRA and PEFT's on two copies of `base`, with the same random nonzero A and B."""
    from peft import LoraConfig, get_peft_model

    ours = copy.deepcopy(base)
    inject_lora(ours, targets, rank=rank, alpha=alpha)
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0))
    generator = torch.Generator().manual_seed(seed)
    peft_modules = dict(theirs.base_model.model.named_modules())
    for name, layer in lora_layers(ours).items():
        with torch.no_grad():
            layer.lora_A.copy_(torch.randn(layer.lora_A.shape, generator=generator) * 0.1)
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * 0.1)  # nonzero, or ΔW = 0 proves nothing
            peft_layer = peft_modules[name]
            peft_layer.lora_A["default"].weight.copy_(layer.lora_A)
            peft_layer.lora_B["default"].weight.copy_(layer.lora_B)
    return ours.eval(), theirs.eval()


def max_diff(a, b) -> float:
    return float((a - b).detach().abs().max())


def test_outputs_match_peft():
    from llm_deeper.models.tiny import tiny_llama

    base = tiny_llama()
    ours, theirs = twins(base)
    ids = torch.randint(3, 259, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b, plain = ours(ids).logits, theirs(input_ids=ids).logits, base(ids).logits
    assert max_diff(a, b) < 1e-6
    assert max_diff(a, plain) > 1e-3  # the adapters really change the output


def test_merged_weights_match_peft_and_unmerge_restores():
    from llm_deeper.models.tiny import tiny_llama

    base = tiny_llama()
    ours, theirs = twins(base, rank=3, alpha=5.0)
    ids = torch.randint(3, 259, (1, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = ours(ids).logits
        merge_lora(ours)
        merged_logits = ours(ids).logits
    assert max_diff(before, merged_logits) < 1e-5  # merging does not change what the model computes
    merged_peft = theirs.merge_and_unload()
    peft_state = merged_peft.state_dict()
    for name, layer in lora_layers(ours).items():
        assert max_diff(layer.base.weight, peft_state[name + ".weight"]) < 1e-6
    unmerge_lora(ours)
    base_state = base.state_dict()
    for name, layer in lora_layers(ours).items():
        assert max_diff(layer.base.weight, base_state[name + ".weight"]) < 1e-6
        assert max_diff(layer.delta_weight(), torch.zeros_like(layer.base.weight)) > 1e-4  # ΔW itself survives unmerge


def test_unload_gives_plain_model_with_merged_weights():
    from llm_deeper.models.tiny import tiny_llama

    ours, theirs = twins(tiny_llama(), targets=["gate_proj", "down_proj"])
    plain = unload_lora(ours)
    assert not lora_layers(plain)
    merged_peft = theirs.merge_and_unload().state_dict()
    for key, value in plain.state_dict().items():
        assert max_diff(value, merged_peft[key]) < 1e-6, key


def test_training_changes_only_lora_and_counts_match_peft():
    from llm_deeper.models.tiny import tiny_llama

    base = tiny_llama()
    ours, theirs = twins(base, rank=8, alpha=16.0)
    report = trainable_report(ours)
    peft_trainable, peft_total = theirs.get_nb_trainable_parameters()
    assert (report.trainable, report.total) == (peft_trainable, peft_total)
    frozen_before = {k: v.clone() for k, v in ours.named_parameters() if not v.requires_grad}
    lora_before = {k: v.clone() for k, v in ours.named_parameters() if v.requires_grad}
    optimizer = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(3, 259, (2, 16), generator=torch.Generator().manual_seed(3))
    ours.train()
    for _ in range(2):
        loss = ours(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = dict(ours.named_parameters())
    assert all(torch.equal(after[k], v) for k, v in frozen_before.items())
    assert all(not torch.equal(after[k], v) for k, v in lora_before.items())


def test_fresh_layer_is_a_no_op_and_bad_targets_say_why():
    layer = LoRALinear(torch.nn.Linear(6, 5), rank=2, alpha=4)
    x = torch.randn(3, 6)
    assert torch.equal(layer(x), layer.base(x))  # B = 0 at start
    assert layer.scaling == 2.0
    from llm_deeper.models.tiny import tiny_llama

    with pytest.raises(ValueError, match="q_proj"):
        inject_lora(tiny_llama(), ["query"])


@pytest.mark.slow
def test_default_model_matches_peft(default_model):
    ours, theirs = twins(default_model.model, rank=8, alpha=16.0, targets=["q_proj", "v_proj"])
    ids = default_model.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert max_diff(ours(ids).logits, theirs(input_ids=ids).logits) < 1e-4
