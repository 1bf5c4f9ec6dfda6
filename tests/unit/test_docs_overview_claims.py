"""Every number in docs/00_overview.md is recomputed here from llm_deeper.sizing."""

import re
from pathlib import Path

from llm_deeper.sizing import (
    BUDGET_MODELS, DEVICES, JOBS, KNOWN, full_finetune_bytes, kv_cache_bytes, largest_that_fits, lora_bytes, lora_parameters,
    parameters, prompt_tuning_parameters, qlora_bytes, training_flops, twelve_d_squared_ratio, weights_bytes,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "00_overview.md").read_text()
FLAT = " ".join(DOC.split())  # prose wraps anywhere
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
        line = next(l for l in DOC.splitlines() if l.startswith(f"| {label} |") and l.count("|") == 8)
        cells = [c.strip() for c in line.strip("|").split("|")]
        arch = KNOWN[name]
        for cell, dtype in zip(cells[2:], ["fp32", "bf16", "int8", "q4_1", "nf4"], strict=True):
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


def row(label: str) -> list[str]:
    line = next(l for l in DOC.splitlines() if l.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_twelve_d_squared_ratios():
    for label, name in {"SmolLM2-135M": "smollm2-135m", "Llama-3.2-1B": "llama-3.2-1b", "Llama-3.1-8B": "llama-3.1-8b",
                        "Llama-3.1-70B": "llama-3.1-70b"}.items():
        assert f"{twelve_d_squared_ratio(KNOWN[name]):.2f} for {label}" in FLAT


def test_training_compute_and_cost_of_phases():
    assert f"{training_flops(KNOWN['smollm2-135m'], 2e12):.1e}" == "1.6e+21" and "| 2 T | 1.6 × 10²¹ FLOPs |" in DOC
    eight_b = KNOWN["llama-3.1-8b"]
    assert f"{training_flops(eight_b, 15e12):.1e}" == "7.2e+23" and "| 15 T | 7.2 × 10²³ FLOPs |" in DOC
    a100_hours = training_flops(eight_b, 15e12) / 3.12e14 / 3600
    assert f"about {round(a100_hours, -3):,.0f} A100-hours" in FLAT
    assert f"{training_flops(eight_b, 1e6):.1e}" == "4.8e+16" and "4.8 × 10¹⁶ FLOPs" in FLAT


def test_fine_tuning_methods_table():
    small, eight_b = KNOWN["smollm2-135m"], KNOWN["llama-3.1-8b"]
    full, lora, qlora, prompt = (row(m) for m in ("full fine-tune", "LoRA", "QLoRA", "prompt tuning"))
    assert full[1].startswith(f"{parameters(small):,}") and full[2].startswith(f"{parameters(eight_b):,}")
    assert full[3] == f"{full_finetune_bytes(eight_b) / GIB:.1f} GiB"
    for r in (lora, qlora):
        share = lora_parameters(small, 16) / parameters(small)
        assert r[1] == f"{lora_parameters(small, 16):,} ({share:.2%})"
        assert r[2] == f"{lora_parameters(eight_b, 16):,} ({lora_parameters(eight_b, 16) / parameters(eight_b):.2%})"
    assert lora[3] == f"{lora_bytes(eight_b, 16) / GIB:.1f} GiB" and qlora[3] == f"{qlora_bytes(eight_b, 16) / GIB:.1f} GiB"
    assert prompt[1] == f"{prompt_tuning_parameters(small):,} ({prompt_tuning_parameters(small) / parameters(small):.4%})"
    assert prompt[2] == f"{prompt_tuning_parameters(eight_b):,} ({prompt_tuning_parameters(eight_b) / parameters(eight_b):.4%})"


def test_qlora_memory_table():
    for label, name in {"Llama-3.2-1B": "llama-3.2-1b", "Llama-3.1-8B": "llama-3.1-8b", "Llama-3.1-70B": "llama-3.1-70b"}.items():
        cells = [l for l in DOC.splitlines() if l.startswith(f"| {label} |") and l.count("|") == 4][0].strip("|").split("|")
        arch = KNOWN[name]
        assert [c.strip() for c in cells[1:]] == [f"{lora_bytes(arch, 16) / GIB:.1f} GiB", f"{qlora_bytes(arch, 16) / GIB:.1f} GiB"]


def test_budget_table_is_calc_budget():
    for device in DEVICES:
        cells = row(device.name)
        assert cells[1] == device.price
        expected = [largest_that_fits(device, job) for job in JOBS]
        assert cells[2:] == [a.name.rsplit("-", 1)[-1].upper() if a else "none" for a in expected], device.name
    assert [KNOWN[n].name for n in BUDGET_MODELS] == list(BUDGET_MODELS)


def test_ranges_in_the_prose_are_the_tables_ranges():
    """'off by 6–21%', 'fits in 29–42% of the memory', LoRA's share: each range is the span of its own table."""
    names = ("smollm2-135m", "llama-3.2-1b", "llama-3.1-8b", "llama-3.1-70b")
    errors = [abs(twelve_d_squared_ratio(KNOWN[n]) - 1) for n in names]
    assert f"off by {round(100 * min(errors))}–{round(100 * max(errors))}% in either direction" in FLAT
    shares = [qlora_bytes(KNOWN[n], 16) / lora_bytes(KNOWN[n], 16) for n in names[1:]]
    assert f"fits in {round(100 * min(shares))}–{round(100 * max(shares))}% of the memory" in FLAT
    small, large = (lora_parameters(KNOWN[n], 16) / parameters(KNOWN[n]) for n in ("smollm2-135m", "llama-3.1-8b"))
    assert 0.01 <= small <= 0.02 and large < 0.01 and "1–2% of a small model's parameters" in FLAT


def test_the_overview_defines_tokens_before_any_file_format():
    assert DOC.index("*tokens*") < DOC.index("GGUF")
