"""The course's pictures, drawn from the project's own code by one command.

`llm-deeper lessons figures` writes docs/figures/<name>.png and docs/figures/stamps.json. A
picture's *stamp* is a hash of what it is drawn from: its drawing function's source, the source
of the library functions whose numbers it shows, and the figures it quotes from bench/RESULTS.md.
tests/unit/test_figures.py recomputes every stamp (no drawing, milliseconds) and fails when one
differs: a source changed and its picture was not redrawn. Pictures are saved with a small
palette (a few KB each), so they can live in the repository.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

STAMPS = "stamps.json"


@dataclass(frozen=True)
class Picture:
    """One picture: how to draw it and what it depends on."""

    name: str  # file name without .png
    draw: Callable  # draw(ax_or_fig_factory) → matplotlib Figure
    sources: tuple[str, ...] = ()  # "module:qualname" of library code whose numbers it shows
    data: Callable[[], object] | None = None  # numbers read from files (cheap), part of the stamp
    caption: str = ""  # one line for the docs
    extra: dict = field(default_factory=dict)


def results_text() -> str:
    from .paths import repo_root

    return (repo_root() / "bench" / "RESULTS.md").read_text(encoding="utf-8")


def table_row(text: str, label: str, after: str = "") -> list[str]:
    """Cells of the first markdown table row starting with `| label |` (after the heading `after`)."""
    start = text.index(after) if after else 0
    line = next(l for l in text[start:].splitlines() if l.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def number(cell: str) -> float:
    return float(re.search(r"-?\d[\d,]*\.?\d*", cell.replace("*", "")).group(0).replace(",", ""))


# ── the numbers quoted from bench/RESULTS.md ─────────────────────────────────
MAIN_JOB = "## The main job and the suite, quiet machine, 2026-11-30"
QUALITY = "`.venv/bin/python bench/bench_engine_quality.py`"


def base_vs_lora_data() -> dict:
    text = results_text()
    rows = {"right tool": "selection (right tool)", "exact arguments": "exact arguments", "correct no-call": "correct no-call"}
    return {name: [number(table_row(text, label, MAIN_JOB)[1]), number(table_row(text, label, MAIN_JOB)[3])] for name, label in rows.items()}


def quantization_data() -> dict:
    text = results_text()
    return {fmt: number(table_row(text, label, QUALITY)[2]) for fmt, label in
            (("bf16", "bf16"), ("int4 (Q4_1 groups)", "**int4**"), ("int8 (per row)", "int8"))}


# ── drawing ──────────────────────────────────────────────────────────────────
def _figure(width: float = 5.0, height: float = 3.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=80)


def draw_attention_heatmap():
    """Attention weights of one head of the default model on a short sentence (layer 3, head 0)."""
    import torch

    from .models.loaders import load_model

    loaded = load_model("smollm2-135m-instruct")
    ids = loaded.tokenizer("The cat sat on the mat because it was warm.", return_tensors="pt")["input_ids"]
    model = loaded.model
    model.config._attn_implementation = "eager"  # the fused kernel returns no weights
    with torch.inference_mode():
        weights = model(ids, output_attentions=True).attentions[3][0, 0].numpy()
    tokens = [t.replace("Ġ", " ") for t in loaded.tokenizer.convert_ids_to_tokens(ids[0])]
    fig, ax = _figure(4.6, 4.0)
    ax.imshow(weights, cmap="Blues")
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
    ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
    ax.set_xlabel("key (what is read)")
    ax.set_ylabel("query (who reads)")
    ax.set_title("SmolLM2-135M, layer 3, head 0", fontsize=9)
    return fig


def draw_causal_mask():
    """Scores with the future at −∞ (left) and the weights after the softmax (right), four tokens."""
    import numpy as np

    from .scratch.attention import attention_scores, causal_mask, softmax

    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    mask = causal_mask(4)
    scores = attention_scores(q, k, mask)
    weights = softmax(scores)
    fig, axes = _figure(6.0, 2.8)
    fig.clear()
    axes = fig.subplots(1, 2)
    for ax, values, title in ((axes[0], scores, "scores (masked: −∞)"), (axes[1], weights, "weights after softmax")):
        shown = np.where(mask, values, np.nan)
        ax.imshow(shown, cmap="Oranges")
        for i in range(4):
            for j in range(4):
                ax.text(j, i, f"{values[i, j]:.2f}" if mask[i, j] else ("−∞" if values is scores else "0"), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(4), [f"k{j}" for j in range(4)])
        ax.set_yticks(range(4), [f"q{i}" for i in range(4)])
        ax.set_title(title, fontsize=9)
    return fig


def draw_rope_rotations():
    """RoPE turns each pair of query/key dimensions by position × frequency: fast pairs spin, slow pairs barely move."""
    import numpy as np

    from .scratch.positional import rope_inv_freq

    inv_freq = rope_inv_freq(64, base=100000.0)  # the default model's head size and rope_theta
    positions = np.arange(0, 33)
    fig, axes = _figure(6.4, 3.0)
    fig.clear()
    axes = fig.subplots(1, 2)
    circle = np.linspace(0, 2 * np.pi, 100)
    axes[0].plot(np.cos(circle), np.sin(circle), color="0.85")
    for pair, color in ((0, "tab:red"), (4, "tab:blue"), (12, "tab:green")):
        angles = positions[:9] * inv_freq[pair]
        axes[0].plot(np.cos(angles), np.sin(angles), "o-", color=color, markersize=3, label=f"pair {pair}")
        axes[1].plot(positions, np.unwrap(positions * inv_freq[pair]), color=color)
    axes[0].set_aspect("equal")
    axes[0].set_title("a unit vector at positions 0–8", fontsize=9)
    axes[0].legend(fontsize=7, loc="lower left")
    axes[1].set_xlabel("position")
    axes[1].set_ylabel("angle (radians)")
    axes[1].set_title("angle = position × θ_pair", fontsize=9)
    return fig


def draw_loss_curve():
    """TinyGPT's training and validation loss, the lesson hfcore/00 recipe at its quick size."""
    import tempfile

    import torch

    from .data.corpus import EOS, default_corpus
    from .scratch.bpe import BPETokenizer
    from .scratch.tinygpt import TinyGPTConfig
    from .train.tinygpt.config import TrainConfig
    from .train.tinygpt.pretrain import train
    from .train.tinygpt.text import TokenData

    torch.set_num_threads(1)
    corpus = default_corpus(max_chars=200_000)
    bpe = BPETokenizer.train(corpus.train, vocab_size=512, special_tokens=[EOS])
    config = TinyGPTConfig(vocab_size=bpe.vocab_size, context=64, n_layer=2, n_head=4, n_embd=64)
    cfg = TrainConfig(steps=120, batch_size=8, warmup_steps=12, lr=2e-3, min_lr=2e-4, eval_every=20, eval_batches=8, seed=0, threads=1)
    with tempfile.TemporaryDirectory() as out:
        result = train(config, cfg, TokenData.encode(corpus, bpe, 64), bpe, Path(out) / "run", show_progress=False)
    fig, ax = _figure()
    ax.plot(range(1, len(result.train_losses) + 1), result.train_losses, color="0.6", linewidth=0.8, label="training batch")
    steps, vals = zip(*result.eval_losses)
    ax.plot(steps, vals, "o-", color="tab:blue", label="validation")
    import math

    ax.axhline(math.log(bpe.vocab_size), linestyle="--", color="tab:red", linewidth=0.8, label="ln(vocab): chance")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.legend(fontsize=7)
    return fig


def draw_lora_singular_values():
    """Singular values of a LoRA update ΔW = (α/r)·B·A (rank 8) beside a full-rank update of the same size."""
    import numpy as np
    import torch

    from .scratch.lora import LoRALinear

    torch.manual_seed(0)
    layer = LoRALinear(torch.nn.Linear(576, 576, bias=False), rank=8, alpha=16.0).double()  # fp64: exact zeros past r
    torch.nn.init.normal_(layer.lora_B, std=0.02)  # as if trained: B starts at zero
    delta = layer.delta_weight().detach().numpy()
    full = np.random.default_rng(0).normal(size=(576, 576)) * np.linalg.norm(delta) / 576
    fig, ax = _figure()
    for values, label, color in ((np.linalg.svd(delta, compute_uv=False), "LoRA ΔW, r = 8", "tab:blue"),
                                 (np.linalg.svd(full, compute_uv=False), "dense update, same norm", "0.5")):
        ax.semilogy(range(1, 65), np.maximum(values[:64], 1e-12), "o-", markersize=2, color=color, label=label)
    ax.axvline(8.5, linestyle="--", color="tab:red", linewidth=0.8)
    ax.set_xlabel("singular value index")
    ax.set_ylabel("singular value (log)")
    ax.legend(fontsize=7)
    return fig


def draw_kv_cache_growth():
    """KV-cache size per sequence against context length (llm_deeper.sizing)."""
    from .sizing import KNOWN, kv_cache_bytes

    fig, ax = _figure()
    lengths = list(range(0, 8193, 256))
    for name, dtype, color in (("smollm2-135m", "fp32", "tab:blue"), ("smollm2-135m", "bf16", "tab:cyan"), ("llama-3.1-8b", "bf16", "tab:red")):
        ax.plot(lengths, [kv_cache_bytes(KNOWN[name], n, dtype=dtype) / 2**20 for n in lengths], color=color, label=f"{name}, {dtype}")
    ax.set_xlabel("tokens in the sequence")
    ax.set_ylabel("KV cache (MiB)")
    ax.legend(fontsize=7)
    return fig


def draw_quantization_error():
    """Mean KL divergence to fp32 of the engine's next-token distributions, by weight format (bench/RESULTS.md)."""
    data = quantization_data()
    fig, ax = _figure()
    ax.bar(list(data), list(data.values()), color=["tab:cyan", "tab:blue", "tab:red"])
    for i, value in enumerate(data.values()):
        ax.text(i, value, f"{value:.5f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("mean KL to fp32 (nats)")
    ax.set_title("default model, 1,505 reference tokens", fontsize=9)
    return fig


def draw_base_vs_lora():
    """Base model vs the tool LoRA on the 40 held-out conversations (bench/RESULTS.md, the main job)."""
    import numpy as np

    data = base_vs_lora_data()
    fig, ax = _figure()
    x = np.arange(len(data))
    ax.bar(x - 0.2, [v[0] for v in data.values()], 0.4, label="base", color="0.6")
    ax.bar(x + 0.2, [v[1] for v in data.values()], 0.4, label="LoRA", color="tab:blue")
    ax.set_xticks(x, list(data))
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of held-out prompts")
    ax.legend(fontsize=7)
    return fig


PICTURES = [
    Picture("attention_heatmap", draw_attention_heatmap, caption="who reads whom: one head of the default model"),
    Picture("causal_mask", draw_causal_mask, ("llm_deeper.scratch.attention:causal_mask", "llm_deeper.scratch.attention:attention_scores",
                                              "llm_deeper.scratch.attention:softmax")),
    Picture("rope_rotations", draw_rope_rotations, ("llm_deeper.scratch.positional:rope_inv_freq",)),
    Picture("loss_curve", draw_loss_curve, ("llm_deeper.train.schedule:warmup_cosine",)),
    Picture("lora_singular_values", draw_lora_singular_values, ("llm_deeper.scratch.lora:LoRALinear",)),
    Picture("kv_cache_growth", draw_kv_cache_growth, ("llm_deeper.sizing:kv_cache_bytes",)),
    Picture("quantization_error", draw_quantization_error, data=quantization_data),
    Picture("base_vs_lora", draw_base_vs_lora, data=base_vs_lora_data),
]


def _source(ref: str) -> str:
    module, _, qualname = ref.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return inspect.getsource(obj)


def stamp(picture: Picture) -> str:
    """Hash of what the picture is drawn from (its function, the library code it shows, its quoted numbers)."""
    parts = [inspect.getsource(picture.draw)] + [_source(ref) for ref in picture.sources]
    if picture.data is not None:
        parts.append(json.dumps(picture.data(), sort_keys=True))
    return hashlib.sha256("\n\0".join(parts).encode("utf-8")).hexdigest()[:16]


def figures_dir() -> Path:
    from .paths import repo_root

    return repo_root() / "docs" / "figures"


def save_small_png(fig, path: Path) -> int:
    """Save with a 64-colour palette (a few KB instead of tens); returns the size in bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    image = Image.open(buffer).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    tmp = path.with_suffix(".png.tmp")
    image.save(tmp, format="PNG", optimize=True)
    tmp.replace(path)
    return path.stat().st_size


def draw_all(names: list[str] | None = None, out: Path | None = None) -> dict[str, int]:
    """Draw the pictures (all, or those named), write them and their stamps; {name: bytes}."""
    import matplotlib.pyplot as plt

    out = out or figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    stamps_path = out / STAMPS
    stamps = json.loads(stamps_path.read_text()) if stamps_path.is_file() else {}
    sizes = {}
    for picture in PICTURES:
        if names and picture.name not in names:
            continue
        fig = picture.draw()
        sizes[picture.name] = save_small_png(fig, out / f"{picture.name}.png")
        plt.close(fig)
        stamps[picture.name] = stamp(picture)
        stamps_path.write_text(json.dumps(stamps, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return sizes


def stale() -> list[str]:
    """Pictures whose stamp no longer matches their sources (or that are missing)."""
    folder = figures_dir()
    stamps = json.loads((folder / STAMPS).read_text()) if (folder / STAMPS).is_file() else {}
    return [p.name for p in PICTURES if stamps.get(p.name) != stamp(p) or not (folder / f"{p.name}.png").is_file()]
