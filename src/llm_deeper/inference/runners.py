"""Model runners: one prefill for a new request, one batched decode step for all.

`LlamaRunner` is the engine's lean path for Llama-architecture models (the
default model, tiny test models, TinyGPT exports in Llama form). It reads the
transformers model's own weights (no copy) and runs the forward pass itself,
so a decode step is a handful of tensor ops per layer over a batch of running
requests, each at its own position, with a slot KV cache and per-row LoRA.
`HFRunner` runs any other architecture through the model's own forward, one
request at a time, so every registry model works, without batching.

Both return raw logits in float32; sampling happens in the engine.
"""

from __future__ import annotations

import functools

from .kv_cache import SlotKVCache
from .quant import linear, quantize

BATCHED_ARCHITECTURES = ("llama",)


class LlamaRunner:
    """Prefill and batched decode for Llama-family models, with a slot KV cache."""

    def __init__(self, model, slots: int, max_len: int, adapters: dict | None = None, quant: str | None = None):
        import torch

        cfg = model.config
        self.quant = quant  # None, or "int8"/"int4": quantized projections (int8 also the LM head); bf16 activations
        self.model = model
        self.body = model.model
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.groups = self.heads // self.kv_heads
        self.scale = self.head_dim ** -0.5
        self.dtype = next(model.parameters()).dtype
        if quant and self.dtype != torch.bfloat16:
            raise ValueError(f"{quant} weights need a bfloat16 model (load it with dtype='bfloat16')")
        # The LM head (Q8_0 in the GGUF, tied to the embeddings) loses far more in 4 bits
        # (KL to fp32 0.044 vs 0.0014, bench/RESULTS.md): int4 keeps it bf16.
        self.lm_head = quantize(model.lm_head.weight, "int8" if quant == "int8" else None)
        self.adapters = adapters or {}
        self.cache = SlotKVCache(len(self.body.layers), slots, self.kv_heads, self.head_dim, max_len, self.dtype)
        self.torch = torch
        # Fused projections: one matmul for q|k|v and one for gate|up per layer
        # (fewer, larger kernels per decode step; the weights are copied once).
        self.fused = [self._fuse(layer) for layer in self.body.layers]
        # RoPE cos/sin for every position, computed once; a step only indexes them.
        with torch.inference_mode():
            probe = torch.zeros(1, 1, cfg.hidden_size, dtype=self.dtype)
            self.cos, self.sin = (t[0] for t in self.body.rotary_emb(probe, torch.arange(max_len).unsqueeze(0)))

    def _fuse(self, layer) -> dict:
        import torch

        att, mlp = layer.self_attn, layer.mlp
        with torch.inference_mode():
            qkv = torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])
            bias = None
            if att.q_proj.bias is not None:
                bias = torch.cat([att.q_proj.bias, att.k_proj.bias, att.v_proj.bias])
            gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        pack = functools.partial(quantize, kind=self.quant)
        return {"qkv": pack(qkv), "o": pack(att.o_proj.weight), "down": pack(mlp.down_proj.weight), "gate_up": pack(gate_up),
                "qkv_bias": bias, "qkv_split": [("q_proj", 0, q), ("k_proj", q, q + kv), ("v_proj", q + kv, q + 2 * kv)],
                "gate_up_split": [("gate_proj", 0, mlp.gate_proj.weight.shape[0]),
                                                      ("up_proj", mlp.gate_proj.weight.shape[0], gate_up.shape[0])]}

    # -- projections, with the LoRA delta of each row's adapter ----------------
    def _lora(self, out, x, layer: int, name: str, groups, start: int, stop: int):
        """Add each adapter's low-rank update to columns start:stop of `out` (its rows only)."""
        import torch.nn.functional as F

        for adapter, rows in groups:
            factors = self.adapters[adapter].weights.get((layer, name))
            if factors is None:
                continue
            a, b, scale = factors
            part = x if rows is None else x[rows]
            delta = F.linear(F.linear(part, a), b) * scale
            if rows is None:
                out[..., start:stop] += delta
            else:
                out[rows, ..., start:stop] += delta
        return out

    def _project(self, x, weight, bias, layer: int, splits, groups):
        out = linear(x, weight, bias)
        for name, start, stop in splits if groups else ():
            self._lora(out, x, layer, name, groups, start, stop)
        return out

    @staticmethod
    def _norm(module, x):
        """RMSNorm exactly as transformers computes it (in fp32, then back)."""
        hidden = x.float()
        hidden = hidden * (hidden.pow(2).mean(-1, keepdim=True) + module.variance_epsilon).rsqrt()
        return module.weight * hidden.to(x.dtype)

    def _layer(self, i: int, layer, x, cos, sin, groups, attend):
        """One transformer block; `attend(q, k, v)` stores k/v and returns attention output."""
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        att, mlp, fused = layer.self_attn, layer.mlp, self.fused[i]
        batch, length, _ = x.shape
        h = self._norm(layer.input_layernorm, x)
        qkv = self._project(h, fused["qkv"], fused["qkv_bias"], i, fused["qkv_split"], groups)
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        q = qkv[..., :q_size].view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        k = qkv[..., q_size:q_size + kv_size].view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        v = qkv[..., q_size + kv_size:].view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        o = attend(i, q, k, v).transpose(1, 2).reshape(batch, length, q_size)
        x = x + self._project(o, fused["o"], att.o_proj.bias, i, [("o_proj", 0, att.o_proj.weight.shape[0])], groups)
        h = self._norm(layer.post_attention_layernorm, x)
        gate_up = self._project(h, fused["gate_up"], None, i, fused["gate_up_split"], groups)
        half = gate_up.shape[-1] // 2
        act = mlp.act_fn(gate_up[..., :half]) * gate_up[..., half:]
        return x + self._project(act, fused["down"], mlp.down_proj.bias, i, [("down_proj", 0, mlp.down_proj.weight.shape[0])], groups)

    def _logits(self, hidden):
        return linear(self._norm(self.body.norm, hidden), self.lm_head).float()

    def prefill(self, slot: int, ids: list[int], adapter: str | None):
        """Run the whole prompt at once, fill the slot's cache, return the last position's logits [V]."""
        with self.torch.inference_mode():
            return self._logits(self._prompt_hidden(slot, ids, adapter)[:, -1])[0]

    def prompt_logits(self, ids: list[int], adapter: str | None = None):
        """Logits at every position of `ids` [T, V], through the weights decoding uses (quality checks).

        Uses slot 0's cache: not while an engine runs on this runner.
        """
        with self.torch.inference_mode():
            return self._logits(self._prompt_hidden(0, ids, adapter))[0]

    def _prompt_hidden(self, slot: int, ids: list[int], adapter: str | None):
        """The final hidden states of the whole prompt [1, T, H]; fills the slot's cache."""
        torch = self.torch
        import torch.nn.functional as F

        self.cache.grow(len(ids) + 1)
        with torch.inference_mode():
            tokens = torch.tensor([ids], dtype=torch.long)
            x = self.body.embed_tokens(tokens)
            cos, sin = self.cos[: len(ids)].unsqueeze(0), self.sin[: len(ids)].unsqueeze(0)
            groups = [(adapter, None)] if adapter else []

            def attend(i, q, k, v):
                self.cache.keys[i][slot, :, : len(ids)] = k[0]
                self.cache.values[i][slot, :, : len(ids)] = v[0]
                return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale, enable_gqa=self.groups > 1)

            for i, layer in enumerate(self.body.layers):
                x = self._layer(i, layer, x, cos, sin, groups, attend)
            return x

    def decode(self, tokens: list[int], positions: list[int], adapters: list[str | None]):
        """One step for slots 0..B-1: row b feeds tokens[b] at positions[b]; returns logits [B, V]."""
        torch = self.torch

        batch = len(tokens)
        length = max(positions) + 1
        self.cache.grow(length)
        with torch.inference_mode():
            x = self.body.embed_tokens(torch.tensor(tokens, dtype=torch.long).unsqueeze(1))
            pos = torch.tensor(positions, dtype=torch.long)
            cos, sin = self.cos[pos].unsqueeze(1), self.sin[pos].unsqueeze(1)
            rows = torch.arange(batch)
            # Row b may attend to positions 0..positions[b] of its own slot.
            mask = (torch.arange(length).unsqueeze(0) <= pos.unsqueeze(1)).view(batch, 1, 1, length)
            groups = _adapter_groups(adapters)

            def attend(i, q, k, v):
                keys, values = self.cache.keys[i], self.cache.values[i]
                keys[rows, :, pos] = k[:, :, 0]
                values[rows, :, pos] = v[:, :, 0]
                # One query per row: plain matmuls beat the fused CPU kernel here.
                # Query heads are grouped under their KV head ([B, kv, groups, hd]),
                # so the cache is read as is, never repeated per query head.
                grouped = q.view(batch, self.kv_heads, self.groups, self.head_dim)
                scores = torch.matmul(grouped, keys[:batch, :, :length].transpose(-1, -2)) * self.scale
                scores = scores.masked_fill(~mask, float("-inf"))
                weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
                out = torch.matmul(weights, values[:batch, :, :length])
                return out.view(batch, self.heads, 1, self.head_dim)

            for i, layer in enumerate(self.body.layers):
                x = self._layer(i, layer, x, cos, sin, groups, attend)
            return self._logits(x[:, -1])

    def move(self, src: int, dst: int, length: int) -> None:
        self.cache.move(src, dst, length)

    def release(self, slot: int) -> None:
        """Nothing to free: the slot is simply reused."""


def _adapter_groups(adapters: list[str | None]):
    """[(adapter, row index tensor)] for rows that use an adapter (base rows need nothing)."""
    import torch

    names = {a for a in adapters if a}
    if not names:
        return []
    if len(names) == 1 and all(adapters):
        return [(adapters[0], None)]
    return [(name, torch.tensor([b for b, a in enumerate(adapters) if a == name])) for name in sorted(names)]


class HFRunner:
    """Any causal LM through its own forward pass and cache, one request per call."""

    def __init__(self, model, slots: int, max_len: int, adapters: dict | None = None):
        import torch

        if adapters:
            raise_unsupported_lora(model)
        self.model = model
        self.caches: list = [None] * slots
        self.torch = torch

    def _forward(self, ids, cache):
        from transformers import DynamicCache

        cache = cache if cache is not None else DynamicCache(config=self.model.config)
        out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float(), cache

    def prefill(self, slot: int, ids: list[int], adapter: str | None):
        with self.torch.inference_mode():
            logits, self.caches[slot] = self._forward(self.torch.tensor([ids]), None)
        return logits

    def decode(self, tokens: list[int], positions: list[int], adapters: list[str | None]):
        rows = []
        with self.torch.inference_mode():
            for b, token in enumerate(tokens):
                logits, self.caches[b] = self._forward(self.torch.tensor([[token]]), self.caches[b])
                rows.append(logits)
        return self.torch.stack(rows)

    def move(self, src: int, dst: int, length: int) -> None:
        self.caches[dst], self.caches[src] = self.caches[src], None

    def release(self, slot: int) -> None:
        self.caches[slot] = None


def raise_unsupported_lora(model) -> None:
    from ..errors import UserError

    raise UserError(f"LoRA adapters are served for Llama-architecture models; this model is {model.config.model_type!r} (merge the adapter first)")


def make_runner(model, slots: int, max_len: int, adapters: dict | None = None, quant: str | None = None):
    """The batched Llama runner when the architecture allows, else the generic one."""
    kind = getattr(model.config, "model_type", "")
    if kind in BATCHED_ARCHITECTURES:
        return LlamaRunner(model, slots, max_len, adapters, quant=quant)
    if quant:
        from ..errors import UserError

        raise UserError(f"{quant} weights are supported for Llama-architecture models; this model is {kind!r} (use bfloat16)")
    return HFRunner(model, slots, max_len, adapters)
