"""Facts about a loaded model, for `models info` and reports."""

from __future__ import annotations

from collections import OrderedDict


def count_parameters(model) -> int:
    """Exact number of distinct parameters (tied embeddings counted once)."""
    seen: set[int] = set()
    total = 0
    for param in model.parameters():  # parameters() already yields a shared tensor once
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel()
    return total


def tool_support(tokenizer) -> str:
    """Whether the chat template renders `tools` itself or we render them."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if not template:
        return "no chat template (base model)"
    if "tools" in template:
        return "native (chat template renders tools)"
    return "via llm-deeper's hermes-style tool prompt (template has no tools)"


def describe(loaded) -> "OrderedDict[str, object]":
    """Architecture, size and capabilities of a `LoadedModel`."""
    model, tokenizer, config = loaded.model, loaded.tokenizer, loaded.model.config
    params = count_parameters(model)
    dtype = next(model.parameters()).dtype
    facts: "OrderedDict[str, object]" = OrderedDict()
    facts["source"] = f"{loaded.ref.kind}: {loaded.folder or loaded.ref.path}"
    facts["architecture"] = ", ".join(getattr(config, "architectures", None) or [type(model).__name__])
    facts["parameters"] = f"{params:,} ({params / 1e6:.1f} M)"
    facts["dtype"] = str(dtype).replace("torch.", "")
    facts["weights in memory"] = f"{params * dtype.itemsize / 2**20:.0f} MiB"
    facts["layers"] = getattr(config, "num_hidden_layers", getattr(config, "n_layer", "?"))
    facts["hidden size"] = getattr(config, "hidden_size", getattr(config, "n_embd", "?"))
    facts["attention heads / KV heads"] = f"{getattr(config, 'num_attention_heads', getattr(config, 'n_head', '?'))} / {getattr(config, 'num_key_value_heads', getattr(config, 'num_attention_heads', getattr(config, 'n_head', '?')))}"
    facts["vocab size"] = getattr(config, "vocab_size", "?")
    facts["context length"] = getattr(config, "max_position_embeddings", getattr(config, "n_positions", "?"))
    facts["tied embeddings"] = bool(getattr(config, "tie_word_embeddings", False))
    rope = (getattr(config, "rope_parameters", None) or {}).get("rope_theta")
    if rope:
        facts["rope theta"] = rope
    facts["chat template"] = "yes" if getattr(tokenizer, "chat_template", None) else "no"
    facts["tool support"] = tool_support(tokenizer)
    facts["load time"] = f"{loaded.seconds:.2f} s"
    return facts
