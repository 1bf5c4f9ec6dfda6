"""Every number in docs/00_overview.md is recomputed here from llm_deeper.calc."""

import re
from pathlib import Path

from llm_deeper.calc import KNOWN, full_finetune_bytes, kv_cache_bytes, lora_parameters, parameters, weights_bytes

DOC = (Path(__file__).resolve().parents[2] / "docs" / "00_overview.md").read_text()
GIB = 2**30


def test_default_model_breakdown():
    arch = KNOWN["smollm2-135m"]
    per_layer = (parameters(arch) - arch.vocab * arch.hidden - arch.hidden) // arch.layers
    assert f"{arch.vocab * arch.hidden:,}" in DOC
    assert f"30 × {per_layer:,} per layer" in DOC
    assert f"**{parameters(arch):,}**" in DOC


def test_memory_table_rows():
    rows = {"SmolLM2-135M": "smollm2-135m", "Llama-3.2-1B": "llama-3.2-1b", "Llama-3.1-8B": "llama-3.1-8b", "Llama-3.1-70B": "llama-3.1-70b"}
    for label, name in rows.items():
        line = next(l for l in DOC.splitlines() if l.startswith(f"| {label} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        arch = KNOWN[name]
        for cell, dtype in zip(cells[2:], ["fp32", "bf16", "int8", "q4"]):
            value = float(cell.split()[0])
            decimals = len(cell.split()[0].split(".")[1])
            assert value == round(weights_bytes(arch, dtype) / GIB, decimals), (label, dtype, cell)


def test_training_and_kv_cache_figures():
    eight_b = KNOWN["llama-3.1-8b"]
    assert f"~{round(full_finetune_bytes(eight_b) / GIB)} GiB" in DOC
    assert f"{lora_parameters(eight_b, 16) / 1e6:.1f} M parameters" in DOC
    assert kv_cache_bytes(KNOWN["smollm2-135m"], 8192, dtype="fp16") == 180 * 2**20 and "= 180 MiB" in DOC
    assert kv_cache_bytes(eight_b, 8192) == GIB and "exactly 1 GiB" in DOC
    assert re.search(r"2 × layers × kv_heads × head_dim × seq_len × batch × bytes per value", DOC)
