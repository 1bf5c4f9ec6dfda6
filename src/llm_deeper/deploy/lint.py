"""`adapters lint`: which servers accept a PEFT LoRA adapter, and the fix for each that does not.

What each server does with an adapter it cannot use (read from their loaders
and seen here): vLLM refuses `modules_to_save` at load, and when none of the
adapter's target modules exists in the base model it loads nothing and
quietly serves the base model; mlx-lm reads its own adapter format, so PEFT
folders need converting; llama.cpp reads LoRA only as GGUF; our engine applies
the seven Llama projections and refuses the rest with a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .adapters import AdapterInfo, base_modules, matching_targets, read_adapter

TARGETS = ("vllm", "mlx", "llamacpp", "ours")
VLLM_MAX_RANK = 512  # the largest --max-lora-rank vLLM accepts
FLOAT_DTYPES = {"F32", "F16", "BF16"}
OUR_PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@dataclass
class Verdict:
    """One server's answer for one adapter."""

    target: str  # vllm, mlx, llamacpp or ours
    problems: list[str] = field(default_factory=list)  # each: what is wrong -> how to fix it
    notes: list[str] = field(default_factory=list)  # accepted, but worth knowing

    @property
    def ok(self) -> bool:
        return not self.problems


def resolve_base(info: AdapterInfo, base: str | None) -> Path | None:
    """The base model folder to check targets against: --base, else the adapter's own base if it resolves."""
    from ..errors import UserError
    from ..models.loaders import model_folder
    from ..models.registry import resolve

    for candidate in (base, info.base):
        if not candidate:
            continue
        try:
            ref = resolve(candidate)
        except UserError:
            if candidate == base:
                raise
            continue
        if ref.kind == "gguf":
            continue
        return model_folder(ref)
    return None


def _common(info: AdapterInfo, modules: set[str] | None) -> tuple[list[str], list[str]]:
    """Problems every server shares: no LoRA, targets missing from the base, weights not float."""
    problems, notes = [], []
    if info.config.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type is {info.config.get('peft_type')}, not LORA -> train a LoRA adapter, or merge this one (llm-deeper merge)")
    if modules is not None:
        chosen, missing = matching_targets(info.targets, modules, info.config.get("layers_to_transform"))
        if not chosen:
            problems.append(f"no target module ({info.targets}) exists in the base model, so the adapter would change nothing "
                            "-> retrain with target_modules named as in the base (e.g. q_proj, v_proj)")
        elif missing:
            notes.append(f"target_modules {missing} match nothing in the base (the others apply)")
    else:
        notes.append("base model not found: targets not checked (pass --base MODEL)")
    odd = info.dtypes - FLOAT_DTYPES
    if odd:
        problems.append(f"weights stored as {sorted(odd)} -> save the adapter in float32, float16 or bfloat16")
    return problems, notes


def lint(folder: str | Path, targets: tuple[str, ...] = TARGETS, base: str | None = None) -> tuple[AdapterInfo, list[Verdict]]:
    info = read_adapter(folder)
    base_folder = resolve_base(info, base)
    modules = base_modules(base_folder) if base_folder else None
    shared_problems, shared_notes = _common(info, modules)
    if not (Path(folder) / "adapter_model.safetensors").is_file():
        shared_problems.append("adapter_model.safetensors is missing -> save with safe_serialization=True (the default in PEFT)")
    verdicts = []
    for target in targets:
        verdict = Verdict(target, list(shared_problems), list(shared_notes))
        if info.modules_to_save:
            fix = "merge the adapter into the base (llm-deeper merge) and serve the merged model, or retrain without modules_to_save"
            verdict.problems.append(f"modules_to_save {info.modules_to_save} (whole trained modules) are not loaded by {target} -> {fix}")
        if info.config.get("use_dora") and target in ("vllm", "llamacpp", "ours"):
            verdict.problems.append(f"DoRA is not applied by {target} -> merge it (llm-deeper merge)")
        if target == "vllm":
            if info.rank > VLLM_MAX_RANK:
                verdict.problems.append(f"rank {info.rank} exceeds vLLM's largest --max-lora-rank {VLLM_MAX_RANK} -> retrain with r <= {VLLM_MAX_RANK}")
            else:
                from .launch import fitting_lora_rank

                verdict.notes.append(f"serve with --max-lora-rank {fitting_lora_rank([info.rank])} or more (rank {info.rank})")
        elif target == "mlx":
            verdict.problems.append(f"mlx-lm reads its own adapter format -> llm-deeper convert peft-to-mlx {info.folder}")
        elif target == "llamacpp":
            verdict.problems.append("llama.cpp reads LoRA adapters as GGUF only -> convert with llama.cpp's convert_lora_to_gguf.py, "
                                    "or merge (llm-deeper merge) and convert the merged model")
        elif target == "ours":
            unknown = info.adapted - OUR_PROJECTIONS
            if unknown:
                verdict.problems.append(f"adapts {sorted(unknown)}; our engine applies {sorted(OUR_PROJECTIONS)} -> merge it (llm-deeper merge)")
            for flag in ("use_qalora", "fan_in_fan_out"):
                if info.config.get(flag):
                    verdict.problems.append(f"{flag} is not applied by our engine -> merge it (llm-deeper merge)")
        verdicts.append(verdict)
    return info, verdicts
