"""LoRA fine-tuning, side by side with a full fine-tune on the same data and steps.

What you learn:
- the `llm-deeper finetune` command (the same loop as lesson 03, `--method lora`);
- what LoRA saves: trainable parameters, peak memory and time per step, measured in
  two separate processes so each peak memory figure is clean;
- why a LoRA base can run in bf16 while full fine-tuning stays in fp32;
- what a PEFT adapter folder holds, and how its loss curve compares with full fine-tuning.

Run: python src/hfcore/04_dataset_plus_finetune_lora.py   (--quick: tiny random model, seconds)
Takes ~2 minutes on 2 CPU cores (two short fine-tunes of the default model; 111 s measured).
"""

# %%
import json
import subprocess
import sys

from llm_deeper.finetune.config import FinetuneConfig
from llm_deeper.finetune.tool_recipe import lesson_setup
from llm_deeper.lesson import check, done, is_quick, output_dir, saved, section, show

out = output_dir("hfcore_04")
setup = lesson_setup(out, is_quick())


def start_finetune(method: str, lr: str) -> subprocess.Popen:
    """Start `llm-deeper finetune` in its own process (so its peak memory figure is its own)."""
    command = [sys.executable, "-m", "llm_deeper", "finetune", "--method", method, "--model", setup.model,
               "--data", str(setup.train), "--eval-data", str(setup.test), "--output", str(out / method),
               "--max-steps", str(setup.steps), "--batch-size", str(setup.batch_size), "--max-length", str(setup.max_length),
               "--lr", lr, "--rank", "8", "--alpha", "16", "--seed", "0"]
    print("  $ llm-deeper " + " ".join(command[3:]), flush=True)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=(out / f"{method}.log").open("w"))


def finish(method: str, run: subprocess.Popen) -> dict:
    """Wait for a fine-tune started by `start_finetune`; return its train_result.json."""
    if run.wait() != 0:
        raise SystemExit((out / f"{method}.log").read_text()[-2000:])
    return json.loads((out / method / "train_result.json").read_text())


section("1. The same data, two methods, two processes")
if setup.quick:  # a tiny random model whose time and memory figures claim nothing: both at once
    runs = {"lora": start_finetune("lora", "1e-3"), "full": start_finetune("full", "2e-5")}
    lora, full = (finish(method, run) for method, run in runs.items())
else:  # one after the other, so neither's time per step counts the other's work
    lora = finish("lora", start_finetune("lora", "1e-3"))
    full = finish("full", start_finetune("full", "2e-5"))

# %%
section("2. Side by side")
# The base's dtype is picked per method: LoRA never updates the base, so it may run in bf16
# (half the memory; the adapters stay fp32) where bf16 matmuls are measured faster than fp32
# (llm_deeper/hardware.py: ~3x on an AVX512-BF16 EPYC, half speed on one Xeon VM, emulated
# without bf16 units). Full fine-tuning keeps fp32: AdamW's small updates vanish in bf16 weights.
dtypes = {m: FinetuneConfig(data=setup.train, output=out, method=m).base_dtype for m in ("lora", "full")}
from llm_deeper.hardware import bf16_matmul_pays  # noqa: E402

show("bf16 matmuls measured faster than fp32 on this CPU", bf16_matmul_pays())
rows = [("base weights", dtypes["lora"], dtypes["full"]),
        ("trainable parameters", f"{lora['trainable']:,}", f"{full['trainable']:,}"),
        ("share trained", f"{100 * lora['trainable'] / lora['total']:.2f}%", f"{100 * full['trainable'] / full['total']:.0f}%"),
        ("peak memory (RSS)", f"{lora['peak_rss_mb']:,.0f} MB", f"{full['peak_rss_mb']:,.0f} MB"),
        ("time per step", f"{lora['seconds'] / lora['steps']:.1f} s", f"{full['seconds'] / full['steps']:.1f} s"),
        ("held-out loss", f"{lora['eval_losses'][0][1]:.3f} → {lora['eval_losses'][-1][1]:.3f}", f"{full['eval_losses'][0][1]:.3f} → {full['eval_losses'][-1][1]:.3f}")]
print(f"  {'':<22} {'LoRA':>20} {'full':>20}")
for name, a, b in rows:
    print(f"  {name:<22} {a:>20} {b:>20}")
check("LoRA trains a small fraction of what full fine-tuning trains", lora["trainable"] < full["trainable"] / 10)
# Same base, same data: the same starting loss, up to bf16 rounding when LoRA's base runs in bf16.
start_gap = abs(lora["eval_losses"][0][1] - full["eval_losses"][0][1])
check("both runs start from the same held-out loss (same base, same data; bf16 rounding aside)",
      start_gap < (1e-4 if dtypes["lora"] == dtypes["full"] else 0.02), f"gap {start_gap:.4f}")
if not setup.quick:  # a tiny random model in quick mode: only the mechanics are checked
    check("LoRA trains under 1% of the weights", lora["trainable"] / lora["total"] < 0.01)
    check("LoRA needs less peak memory (no gradients or Adam state for the base weights)", lora["peak_rss_mb"] < full["peak_rss_mb"])
    check("LoRA lowered the held-out loss (a training outcome: seed 0 fixes it)", lora["eval_losses"][-1][1] < lora["eval_losses"][0][1])

# %%
section("3. The adapter folder")
adapter = out / "lora"
files = sorted(p.name for p in adapter.iterdir())
show("files", files)
config = json.loads((adapter / "adapter_config.json").read_text())
show("adapter_config.json", {k: config[k] for k in ("peft_type", "r", "lora_alpha", "target_modules") if k in config})
size = (adapter / "adapter_model.safetensors").stat().st_size
show("adapter_model.safetensors", f"{size / 2**20:.1f} MiB (4 bytes × {lora['trainable']:,} parameters + header)")
check("a standard PEFT adapter: adapter_config.json + adapter_model.safetensors", {"adapter_config.json", "adapter_model.safetensors"} <= set(files))
check("the adapter file holds just the LoRA weights", 4 * lora["trainable"] <= size < 4 * lora["trainable"] + 2**20)
saved(adapter)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.figure(figsize=(6, 3.5))
for name, run in (("LoRA", lora), ("full", full)):
    plt.plot(range(1, len(run["train_losses"]) + 1), run["train_losses"], marker="o", label=name)
plt.xlabel("step")
plt.ylabel("loss per trained token")
plt.title("LoRA vs full fine-tuning, same data and steps")
plt.legend()
plt.tight_layout()
plt.savefig(out / "lora_vs_full_loss.png", dpi=110)
saved(out / "lora_vs_full_loss.png")
print("  Next: lesson 05 loads this adapter, merges it, and switches it off, side by side.")
done()
