"""LoRA: train a low-rank update instead of the whole weight, from scratch and with PEFT.

What you learn:
- why ΔW = (alpha / r) · B A has rank ≤ r and costs r·(in + out) numbers instead of in·out;
- how much LoRA saves on models from 135M to 70B parameters;
- how our from-scratch LoRA (`llm_deeper.scratch.lora`) is put into a model, and that it gives
  exactly PEFT's outputs and merged weights for the same A and B;
- that training moves only A and B (the base stays frozen), and that merge / unmerge is exact.

Run: python src/hfcore/02_peft_lora.py   (or: llm-deeper lessons run hfcore/02)
Takes ~20 s on 2 CPU cores.
"""

# %%
import copy

import torch

from llm_deeper.lesson import check, close, done, logits_tolerance, section, show
from llm_deeper.models.loaders import load_model
from llm_deeper.models.registry import DEFAULT_MODEL
from llm_deeper.scratch.lora import LoRALinear, inject_lora, lora_layers, lora_parameter_count, merge_lora, trainable_report, unmerge_lora

section("1. The low-rank idea on one real layer")
loaded = load_model(DEFAULT_MODEL)
model, tokenizer = loaded.model, loaded.tokenizer
q_proj = model.model.layers[0].self_attn.q_proj
layer = LoRALinear(copy.deepcopy(q_proj), rank=8, alpha=16)
show("base weight W", f"{tuple(layer.base.weight.shape)} = {layer.base.weight.numel():,} numbers")
show("A, B", f"{tuple(layer.lora_A.shape)}, {tuple(layer.lora_B.shape)} = {layer.lora_A.numel() + layer.lora_B.numel():,} numbers")
x = torch.randn(3, 576)
check("B starts at zero, so a fresh adapter changes nothing", torch.equal(layer(x), layer.base(x)))
with torch.no_grad():
    layer.lora_B.normal_(std=0.02)  # what training would do, in one jump
rank = int(torch.linalg.matrix_rank(layer.delta_weight()))
check("ΔW = (alpha/r)·B·A has rank r = 8 although it is 576 × 576", rank == 8, f"rank {rank}")
check("the layer trains r·(in + out) numbers", layer.lora_A.numel() + layer.lora_B.numel() == lora_parameter_count(576, 576, 8))

# %%
section("2. What LoRA saves (r = 8 on q, k, v, o of every layer)")
# (name, layers, hidden, kv width = kv_heads × head_dim, total parameters)
models = [("SmolLM2-135M", 30, 576, 192, 134.5e6), ("Llama-3.2-1B", 16, 2048, 512, 1.24e9), ("Llama-3.1-8B", 32, 4096, 1024, 8.03e9), ("Llama-3.1-70B", 80, 8192, 1024, 70.6e9)]
print(f"  {'model':<15} {'LoRA params':>12} {'of the model':>13}")
counts = {}
for name, layers, hidden, kv, total in models:
    per_layer = 2 * lora_parameter_count(hidden, hidden, 8) + 2 * lora_parameter_count(hidden, kv, 8)  # q,o square; k,v narrow (GQA)
    counts[name] = layers * per_layer
    print(f"  {name:<15} {counts[name]:>12,} {100 * counts[name] / total:>12.3f}%")
check("under 1% of the weights train for every model in the table", all(counts[n] / t < 0.01 for n, *_, t in models))

# %%
section("3. Our LoRA inside the default model")
ours = copy.deepcopy(model)
wrapped = inject_lora(ours, ["q_proj", "k_proj", "v_proj", "o_proj"], rank=8, alpha=16, seed=0)
report = trainable_report(ours)
show("wrapped layers", f"{len(wrapped)} (e.g. {wrapped[0]})")
show("ours", report)
check("the table's count for SmolLM2 is what the model really trains", report.trainable == counts["SmolLM2-135M"])

from peft import LoraConfig, get_peft_model  # noqa: E402  (the library twin)

theirs = get_peft_model(copy.deepcopy(model), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], lora_dropout=0.0))
peft_trainable, peft_total = theirs.get_nb_trainable_parameters()
show("PEFT", f"trainable params: {peft_trainable:,} || all params: {peft_total:,}")
check("PEFT counts the same trainable and total parameters", (report.trainable, report.total) == (peft_trainable, peft_total))

# %%
section("4. Parity with PEFT: same A and B → same numbers")
generator = torch.Generator().manual_seed(0)
peft_layers = dict(theirs.base_model.model.named_modules())
with torch.no_grad():
    for name, mine in lora_layers(ours).items():
        mine.lora_B.copy_(torch.randn(mine.lora_B.shape, generator=generator) * 0.01)  # nonzero B, or ΔW = 0 proves nothing
        peft_layers[name].lora_A["default"].weight.copy_(mine.lora_A)
        peft_layers[name].lora_B["default"].weight.copy_(mine.lora_B)
ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
with torch.no_grad():
    ours_logits, peft_logits, base_logits = ours(ids).logits, theirs(input_ids=ids).logits, model(ids).logits
# The same products in our order and PEFT's: fp32 rounding through 30 layers is all we allow.
tolerance = logits_tolerance(peft_logits, model.config.hidden_size, model.config.num_hidden_layers)
ok, diff = close(ours_logits, peft_logits, atol=tolerance)
check("our logits equal PEFT's", ok, diff)
check("and the adapters do change the model", not close(ours_logits, base_logits, atol=10 * tolerance)[0])
merge_lora(ours)
merged_peft = theirs.merge_and_unload().state_dict()
worst = max(float((m.base.weight - merged_peft[n + ".weight"]).abs().max()) for n, m in lora_layers(ours).items())
check("merged weights W + ΔW equal PEFT's merge_and_unload", worst < 1e-6, f"max |diff| = {worst:.1e}")
unmerge_lora(ours)
base_state = model.state_dict()
worst = max(float((m.base.weight - base_state[n + ".weight"]).abs().max()) for n, m in lora_layers(ours).items())
check("unmerge gives the base weights back", worst < 1e-6, f"max |diff| = {worst:.1e}")

# %%
section("5. Training moves only A and B")
student = copy.deepcopy(model)
inject_lora(student, ["q_proj", "v_proj"], rank=4, alpha=8, seed=0)
frozen = {k: v.clone() for k, v in student.named_parameters() if not v.requires_grad}
optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-2)
lesson = tokenizer("The capital of France is Lyon", return_tensors="pt")["input_ids"]  # teach it something false, on purpose
lyon = tokenizer(" Lyon")["input_ids"][0]
student.train()
for step in range(8):
    loss = student(input_ids=lesson, labels=lesson).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
student.eval()
with torch.no_grad():
    top = int(student(ids).logits[0, -1].argmax())
show("after 8 steps, next token", repr(tokenizer.decode([top])))
check("the adapter learned the new answer (a training outcome: seed 0 fixes it)", top == lyon)
check("every base weight is bit-for-bit unchanged", all(torch.equal(v, dict(student.named_parameters())[k]) for k, v in frozen.items()))
done()
