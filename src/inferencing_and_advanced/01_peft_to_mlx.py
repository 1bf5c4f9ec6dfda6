"""PEFT ⇄ MLX: the same LoRA adapter in two formats, converted, and proven equal by logits.

What you learn:
- what a PEFT adapter folder holds (adapter_config.json, lora_A (r, in), lora_B (out, r), scale alpha / r)
  and what an mlx-lm adapter folder holds (lora_a (in, r), lora_b (r, out), one `scale`, the last `num_layers` layers);
- `llm-deeper convert peft-to-mlx`: names, orientation, scale and config translated, nothing else;
- parity by numbers: ΔW equal to 1e-6, mlx-lm's logits equal to PEFT's, the same greedy answer;
- the way back (`convert mlx-to-peft`) gives the original files bit for bit.

Run: python src/inferencing_and_advanced/01_peft_to_mlx.py   (--quick: tiny random model, seconds)
Takes: about 2 minutes on 2 busy CPU cores (104 s measured at load 4: a 2-step LoRA fine-tune ~1 minute first,
then PEFT and mlx-lm side by side on the shortest held-out tool prompt).
MLX runs on the CPU here (`mlx[cpu]`) and on Metal on Apple silicon; where it cannot be imported the
mlx-lm cells say why and are skipped.
"""

# %%
import json

import torch
from safetensors.torch import load_file

from llm_deeper.chat_format import prompt_ids
from llm_deeper.convert.mlx_runtime import mlx_status
from llm_deeper.convert.mlx_to_peft import mlx_to_peft
from llm_deeper.convert.peft_to_mlx import peft_to_mlx
from llm_deeper.data.sft import read_jsonl
from llm_deeper.finetune.config import FinetuneConfig
from llm_deeper.finetune.loop import train
from llm_deeper.finetune.merge import load_with_adapter
from llm_deeper.finetune.tool_probe import expected_tool, prompt_messages
from llm_deeper.finetune.tool_recipe import lesson_setup
from llm_deeper.lesson import check, done, is_quick, output_dir, saved, section, show

out = output_dir("inferencing_01")
quick = is_quick()

section("1. A PEFT adapter, trained here")
setup = lesson_setup(out, quick)
adapter = out / "peft-adapter"
if not (adapter / "adapter_config.json").exists():
    # two steps of one conversation each are enough: the point is a real adapter with nonzero B, not a good one
    train(FinetuneConfig(data=setup.train, output=adapter, model=setup.model, method="lora", max_steps=2, batch_size=1,
                         max_length=setup.max_length, lr=1e-3 if not quick else 5e-2, rank=8, alpha=16, seed=0))
else:
    show("reusing", f"{adapter} (delete it to train again)")
peft_config = json.loads((adapter / "adapter_config.json").read_text())
peft_weights = load_file(str(adapter / "adapter_model.safetensors"))
check("the adapter is a PEFT LoRA folder", peft_config["peft_type"] == "LORA" and bool(peft_weights))

# %%
section("2. Convert: llm-deeper convert peft-to-mlx ADAPTER OUT")
mlx_dir = out / "mlx-adapter"
converted = peft_to_mlx(adapter, mlx_dir, model=setup.model, force=True)
saved(mlx_dir)
mlx_config = json.loads((mlx_dir / "adapter_config.json").read_text())
mlx_weights = load_file(str(mlx_dir / "adapters.safetensors"))

module = "model.layers.0.self_attn.q_proj"
a_peft, b_peft = peft_weights[f"base_model.model.{module}.lora_A.weight"], peft_weights[f"base_model.model.{module}.lora_B.weight"]
a_mlx, b_mlx = mlx_weights[f"{module}.lora_a"], mlx_weights[f"{module}.lora_b"]
print(f"\n  {'':10} {'PEFT':58} mlx-lm")
print(f"  {'files':10} {'adapter_config.json + adapter_model.safetensors':58} adapter_config.json + adapters.safetensors")
print(f"  {'A name':10} {'base_model.model.' + module + '.lora_A.weight':58} {module}.lora_a")
print(f"  {'A shape':10} {str(tuple(a_peft.shape)) + ' (r, in)':58} {tuple(a_mlx.shape)} (in, r)")
print(f"  {'B shape':10} {str(tuple(b_peft.shape)) + ' (out, r)':58} {tuple(b_mlx.shape)} (r, out)")
scale_text = f"lora_alpha / r = {peft_config['lora_alpha']:g} / {peft_config['r']}" + (" (√r with rsLoRA)" if peft_config.get("use_rslora") else "")
print(f"  {'scale':10} {scale_text:58} lora_parameters.scale = {mlx_config['lora_parameters']['scale']:g}")
print(f"  {'layers':10} {'target_modules=' + str(peft_config['target_modules']):58} last num_layers={mlx_config['num_layers']}, keys={mlx_config['lora_parameters']['keys']}")
check("lora_a is lora_A transposed, bit for bit", torch.equal(a_mlx, a_peft.T))
check("lora_b is lora_B transposed, bit for bit", torch.equal(b_mlx, b_peft.T))
check("mlx-lm's one scale is PEFT's alpha / r", mlx_config["lora_parameters"]["scale"] == peft_config["lora_alpha"] / peft_config["r"])

# %%
section("3. ΔW: what the adapter adds to each weight, both ways")
from peft.tuners.lora import LoraLayer  # noqa: E402

peft_model, tokenizer = load_with_adapter(setup.model, adapter)
worst = 0.0
for name, layer in peft_model.named_modules():
    if isinstance(layer, LoraLayer) and "default" in layer.lora_A:
        key = name.removeprefix("base_model.model.")
        theirs = layer.get_delta_weight("default").double()
        ours = converted.scale * (mlx_weights[f"{key}.lora_b"].double().T @ mlx_weights[f"{key}.lora_a"].double().T)  # mlx-lm's fuse
        worst = max(worst, float((ours - theirs).abs().max()))
show("modules compared", len([m for m in peft_model.modules() if isinstance(m, LoraLayer)]))
check("mlx-lm's ΔW equals PEFT's in every module", worst < 1e-6, f"max |Δ| = {worst:.1e}")

# %%
section("4. Logits and greedy text: mlx-lm with the converted adapter vs PEFT")
usable, reason = mlx_status()
if not usable:
    show("skipped", reason)
else:
    from llm_deeper.convert.mlx_parity import compare_with_peft

    # the shortest held-out tool prompt: mlx-lm on a Linux CPU multiplies with the reference BLAS, every token counts
    ids = min((prompt_ids(tokenizer, prompt_messages(e), e.tools) for e in read_jsonl(setup.test) if expected_tool(e)), key=len)
    # PEFT generates greedily; then each side reads prompt + continuation once: every logit compared, and
    # mlx-lm's argmax after each prefix is the token its greedy decoder picks there
    parity = compare_with_peft(setup.model, adapter, mlx_dir, ids, max_new_tokens=8 if quick else 32, peft_model=peft_model)
    show("prompt", f"a held-out tool prompt, {parity.prompt_tokens} tokens (+ the continuation: {parity.positions} positions compared)")
    show("max |Δlogit| mlx-lm vs PEFT, with the adapter", f"{parity.max_logit_diff:.2e}")
    show("max |Δlogit| the adapter itself causes", f"{parity.adapter_effect:.2e}")
    show("PEFT greedy", repr(parity.peft_text))
    show("mlx-lm greedy", repr(parity.mlx_text))
    check("the adapter changes the logits far more than the two implementations differ", parity.adapter_effect > 10 * parity.max_logit_diff)
    check("mlx-lm's logits equal PEFT's (fp32)", parity.max_logit_diff < 1e-3, f"max |Δ| = {parity.max_logit_diff:.1e}")
    check(f"the same {len(parity.peft_ids)} greedy tokens", parity.same_greedy)
del peft_model

# %%
section("5. The way back: llm-deeper convert mlx-to-peft ADAPTER OUT --model M")
back, _ = mlx_to_peft(mlx_dir, out / "peft-again", model=setup.model, force=True)
saved(back)
again = load_file(str(back / "adapter_model.safetensors"))
check("PEFT → MLX → PEFT gives the same tensors, bit for bit", sorted(again) == sorted(peft_weights) and all(torch.equal(again[k], peft_weights[k]) for k in again))
check("... and the same adapter_config.json", json.loads((back / "adapter_config.json").read_text()) == peft_config)
show("note", "an adapter trained by mlx-lm itself converts the same way: lesson 02 does it")

done()
