"""`llm-deeper calc {params,memory,kv-cache,budget}`: exact sizing numbers."""

from __future__ import annotations

import typer

calc_app = typer.Typer(help="Parameters, memory and KV-cache size of Llama-family models. Example: llm-deeper calc kv-cache llama-3.1-8b --seq-len 8192", no_args_is_help=True)
ARCH_ARG = typer.Argument("smollm2-135m", help="A known architecture (see `calc params --list`).")


def arch_named(name: str):
    from ..sizing import KNOWN
    from ..errors import UserError

    if name not in KNOWN:
        raise UserError(f"unknown architecture {name!r}: choose one of {', '.join(KNOWN)}")
    return KNOWN[name]


@calc_app.command("params")
def params(name: str = ARCH_ARG, list_all: bool = typer.Option(False, "--list", help="Show every known architecture.")) -> None:
    """Exact parameter count. Example: llm-deeper calc params llama-3.1-8b"""
    from rich.console import Console
    from rich.table import Table

    from ..sizing import KNOWN, parameters

    table = Table("architecture", "layers", "hidden", "heads/kv", "vocab", "parameters")
    for arch in (KNOWN.values() if list_all else [arch_named(name)]):
        table.add_row(arch.name, str(arch.layers), str(arch.hidden), f"{arch.heads}/{arch.kv_heads}", f"{arch.vocab:,}", f"{parameters(arch):,}")
    Console().print(table)


@calc_app.command("memory")
def memory(name: str = ARCH_ARG, rank: int = typer.Option(16, "--rank", min=1, help="LoRA rank for the LoRA row.")) -> None:
    """Weights by dtype, full fine-tune and LoRA memory (without activations). Example: llm-deeper calc memory mistral-7b"""
    from rich.console import Console
    from rich.table import Table

    from ..sizing import BYTES_PER_VALUE, full_finetune_bytes, human_bytes, lora_bytes, lora_parameters, parameters, qlora_bytes, weights_bytes

    arch = arch_named(name)
    table = Table("what", "memory", title=f"{arch.name}: {parameters(arch):,} parameters")
    for dtype in BYTES_PER_VALUE:
        table.add_row(f"weights {dtype}", human_bytes(weights_bytes(arch, dtype)))
    table.add_row("full fine-tune, AdamW mixed precision (16 B/param)", human_bytes(full_finetune_bytes(arch)))
    lora = lora_parameters(arch, rank)
    table.add_row(f"LoRA r={rank} on q,k,v,o: bf16 weights + {lora:,} trainable × 16 B", human_bytes(lora_bytes(arch, rank)))
    table.add_row(f"QLoRA r={rank}: NF4 linear layers + bf16 embeddings + {lora:,} trainable × 16 B", human_bytes(qlora_bytes(arch, rank)))
    Console().print(table)


@calc_app.command("kv-cache")
def kv_cache(
    name: str = ARCH_ARG,
    seq_len: int = typer.Option(4096, "--seq-len", min=1, help="Tokens per sequence."),
    batch: int = typer.Option(1, "--batch", min=1, help="Concurrent sequences."),
    dtype: str = typer.Option("bf16", "--dtype", help="fp32, bf16, fp16, int8, q4_1 or nf4."),
) -> None:
    """KV cache = 2 × layers × kv_heads × head_dim × seq_len × batch × bytes. Example: llm-deeper calc kv-cache --seq-len 8192"""
    from ..sizing import BYTES_PER_VALUE, human_bytes, kv_cache_bytes
    from ..errors import UserError

    if dtype not in BYTES_PER_VALUE:
        raise UserError(f"unknown dtype {dtype!r}: choose one of {', '.join(BYTES_PER_VALUE)}")
    arch = arch_named(name)
    total = kv_cache_bytes(arch, seq_len, batch, dtype)
    print(f"{arch.name}: 2 × {arch.layers} layers × {arch.kv_heads} kv_heads × {arch.hd} head_dim × {seq_len} tokens × {batch} × {BYTES_PER_VALUE[dtype]} B = {human_bytes(total)}")


@calc_app.command("budget")
def budget() -> None:
    """The largest model each machine of the seed's budget table serves and fine-tunes. Example: llm-deeper calc budget"""
    from rich.console import Console
    from rich.table import Table

    from ..sizing import DEVICES, HEADROOM, JOBS, largest_that_fits

    table = Table("machine", "cost", *JOBS, title=f"largest of SmolLM2-135M, Llama 1B/8B/70B that fits, with {HEADROOM - 1:.0%} headroom")
    for device in DEVICES:
        fits = [largest_that_fits(device, job) for job in JOBS]
        table.add_row(device.name, device.price, *[size_label(arch) for arch in fits])
    Console().print(table)


def size_label(arch) -> str:
    """'llama-3.1-8b' → '8B': the table has five job columns to fit in a terminal."""
    return arch.name.rsplit("-", 1)[-1].upper() if arch else "none"


def register(app: typer.Typer) -> None:
    app.add_typer(calc_app, name="calc")
