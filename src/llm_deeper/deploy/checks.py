"""Checks before launching vLLM, so a bad deployment fails in a second with one line, not after a minute of start-up.

Each check returns a line for the report; a failed one raises `UserError`
with what was wrong and how to fix it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from . import env as vllm_env
from .adapters import base_modules, matching_targets, read_adapter
from .launch import LORA_RANKS, VllmConfig, build_command, device_of, fitting_lora_rank, model_folder

# Parsers of vLLM 0.32 (`--tool-call-parser`), used when its environment is not built yet to read them from.
KNOWN_PARSERS = ("hermes", "mistral", "llama3_json", "llama4_json", "llama4_pythonic", "pythonic", "granite",
                 "granite-20b-fc", "internlm", "jamba", "xlam", "qwen3_coder", "qwen3_xml", "deepseek_v3",
                 "deepseek_v31", "kimi_k2", "glm45", "minimax", "phi4_mini_json", "hunyuan_a13b", "openai")
LAZY_ENTRY = re.compile(r'^\s+"([\w.-]+)":\s*\(\s*(?:#.*)?$', re.M)  # `"hermes": (` opening a registry entry
GPU_RESERVE_GIB = 1.0  # CUDA context, activations and graphs: not available to the KV cache
DEFAULT_GPU_UTILIZATION = 0.9  # vLLM's own default --gpu-memory-utilization


@dataclass
class Plan:
    """A checked deployment: the command and what the checks found."""

    argv: list[str]  # the vLLM command line
    variables: dict[str, str]  # environment variables it needs
    report: list[str] = field(default_factory=list)  # one line per check passed
    kv_tokens: int = 0  # tokens the KV cache holds
    kv_sequences: int = 0  # full-length sequences that fit at once


def installed_parsers(python: Path) -> tuple[str, ...] | None:
    """Tool-call parser names a built vLLM environment registers (read from its source, no import).

    vLLM 0.32 lists them in `vllm/tool_parsers/__init__.py` as `"name": ("module", "Class")`.
    """
    names: set[str] = set()
    for registry in python.parent.parent.glob("lib/python*/site-packages/vllm/tool_parsers/__init__.py"):
        names |= set(LAZY_ENTRY.findall(registry.read_text(errors="ignore")))
    return tuple(sorted(names)) or None


def check_parser(name: str, python: Path) -> str:
    parsers = installed_parsers(python) if python.exists() else None
    known = parsers or KNOWN_PARSERS
    if name not in known:
        raise UserError(f"unknown tool-call parser {name!r}; vLLM knows {', '.join(known)} (hermes reads <tool_call> JSON, our format)")
    return f"tool-call parser {name} ({'from the vLLM environment' if parsers else 'known to vLLM 0.32'})"


def read_arch(folder: Path):
    """`sizing.Arch` from a model folder's config.json."""
    from types import SimpleNamespace

    from ..sizing import from_hf_config

    config = json.loads((folder / "config.json").read_text())
    for needed in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if needed not in config:
            raise UserError(f"{folder}/config.json lacks {needed}: the sizing here covers Llama-family decoders only")
    config.setdefault("max_position_embeddings", 2048)
    config.setdefault("name_or_path", folder.name)
    return from_hf_config(SimpleNamespace(**config))


def kv_capacity(arch, budget_bytes: float, max_len: int, dtype: str) -> tuple[int, int]:
    """(tokens the KV cache holds, sequences of max_len that fit together)."""
    from ..sizing import kv_cache_bytes

    per_token = kv_cache_bytes(arch, seq_len=1, dtype=dtype)
    tokens = int(max(budget_bytes, 0) // per_token)
    return tokens, tokens // max_len


def plan(config: VllmConfig, gpu_memory_gib: float | None = None, tool_parser: str = "hermes", port: int = 8000) -> Plan:
    """Run every check and build the command; raises UserError on the first failure."""
    from ..sizing import human_bytes, weights_bytes
    from .chat_template import model_chat_template

    device = device_of(config)
    spec = vllm_env.CUDA_SPEC if device == "cuda" else vllm_env.CPU_SPEC
    python = vllm_env.env_python(vllm_env.env_dir(spec))
    report = [f"target: {device} ({spec.vllm}, environment {python.parent.parent})"]
    folder = model_folder(config.model)
    report.append(f"model folder {folder}")

    if config.tools:
        report.append(check_parser(tool_parser, python))
    template = model_chat_template(folder)
    if template is None:
        raise UserError(f"{folder} has no chat template: vLLM's chat API needs one (save the tokenizer with its chat_template)")
    from .chat_template import knows_tools

    template_path = None
    if config.tools and not knows_tools(template):
        if tool_parser != "hermes":
            raise UserError(f"the model's template has no tools, and the one we write emits hermes <tool_call> JSON: use --tool-parser hermes, not {tool_parser}")
        from ..paths import artifact_dir

        from .chat_template import write_tools_template

        template_path = write_tools_template(folder, artifact_dir("vllm") / f"{folder.name}.tools.jinja")  # the printed command uses it
        report.append(f"chat template: the model's has no tools; a tools-aware one (tools/render.py's format) goes to {template_path}")
    else:
        report.append("chat template: the model's own" + (" (it renders tools)" if config.tools else ""))

    rank = None
    if config.loras:
        modules = base_modules(folder)
        ranks = []
        for name, adapter_dir in config.loras.items():
            info = read_adapter(adapter_dir)
            if info.modules_to_save:
                raise UserError(f"adapter {name} has modules_to_save {info.modules_to_save}, which vLLM refuses: merge it (llm-deeper merge) and serve the merged model")
            chosen, missing = matching_targets(info.targets, modules, info.config.get("layers_to_transform"))
            if not chosen:
                raise UserError(f"adapter {name}: none of its target modules {info.targets} exists in {folder.name}, so vLLM would serve the base model unchanged; retrain it on this base")
            ranks.append(info.rank)
            report.append(f"adapter {name}: rank {info.rank}, {len(chosen)} base modules adapted" + (f" ({missing} match nothing)" if missing else ""))
        rank = config.max_lora_rank or fitting_lora_rank(ranks)
        if rank not in LORA_RANKS:
            raise UserError(f"--max-lora-rank {rank} is not one vLLM accepts ({', '.join(map(str, LORA_RANKS))})")
        if max(ranks) > rank:
            raise UserError(f"adapter rank {max(ranks)} exceeds --max-lora-rank {rank}: raise it to {fitting_lora_rank(ranks)}")
        report.append(f"--max-lora-rank {rank} holds every adapter (largest rank {max(ranks)})")

    arch = read_arch(folder)
    max_len = config.max_model_len or arch.context
    if max_len > arch.context:
        raise UserError(f"--max-model-len {max_len} exceeds the model's context {arch.context}")
    kv_dtype = "fp32" if (config.dtype or ("float32" if device == "cpu" else "bf16")) in ("float32", "fp32") else "bf16"
    if device == "cpu":
        budget = config.kv_cache_gib * 2**30
        where = f"VLLM_CPU_KVCACHE_SPACE={config.kv_cache_gib:g} GiB"
    else:
        if gpu_memory_gib is None:
            raise UserError("sizing for a GPU needs its memory: pass --gpu-memory GiB (e.g. 24 for an L4/A10, 80 for an H100)")
        share = config.gpu_memory_utilization or DEFAULT_GPU_UTILIZATION
        weights = weights_bytes(arch, "fp32" if kv_dtype == "fp32" else "bf16")
        budget = gpu_memory_gib * 2**30 * share - weights - GPU_RESERVE_GIB * 2**30
        where = f"{gpu_memory_gib:g} GiB x {share:.2f} - weights {human_bytes(weights)} - {GPU_RESERVE_GIB:g} GiB reserve"
    tokens, sequences = kv_capacity(arch, budget, max_len, kv_dtype)
    if sequences < 1:
        raise UserError(f"the KV cache ({where}) holds {tokens} tokens, less than one sequence of {max_len}: "
                        "lower --max-model-len or give vLLM more memory")
    report.append(f"KV cache ({kv_dtype}, {where}): {tokens:,} tokens = {sequences} concurrent sequences of {max_len}")
    argv, variables = build_command(config, str(python), folder, port, template_path, rank)
    return Plan(argv, variables, report, tokens, sequences)
