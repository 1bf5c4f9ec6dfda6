"""Model runners: one prefill for a new request, one batched decode step for all.

`LlamaRunner` is the engine's lean path for Llama-architecture models (the
default model, tiny test models, TinyGPT exports in Llama form). It runs the
engine's own forward (`llama.py`, typed fused weights), so a decode step is a
handful of tensor ops per layer over a batch of running requests, each at its
own position, with a slot KV cache and per-row LoRA.
`HFRunner` runs any other architecture through the model's own forward, one
request at a time, so every registry model works, without batching.

Both follow the `Runner` protocol and return raw logits in float32; sampling
happens in the engine.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from . import llama
from .kv_cache import SlotKVCache
from .memory import keep_freed_memory
from .quant import packing_pays


class PromptChunk(NamedTuple):
    """Prompt positions start..len(ids)-1 of the request in `slot` (0..start-1 are cached already)."""

    slot: int
    ids: list[int]  # the prompt up to the chunk's end
    adapter: str | None
    start: int = 0


class Runner(Protocol):
    """What the engine asks of a model: slots 0..B-1 hold the running requests, in order."""

    batched: bool  # True: one decode call advances every row together

    def prefill(self, slot: int, ids: list[int], adapter: str | None, start: int = 0):
        """Run prompt positions start.. into `slot`'s cache (0..start-1 are there); the last position's logits [V] (fp32).

        Only a batched runner takes start > 0 (a long prompt in chunks, between decode steps).
        """

    def prefill_many(self, chunks: list["PromptChunk"]):
        """`prefill` for several prompts at once: logits [len(chunks), V], one row per chunk's last position."""

    def decode(self, tokens: list[int], positions: list[int], adapters: list[str | None]):
        """One step for slots 0..B-1: row b feeds tokens[b] at positions[b]; logits [B, V] (fp32)."""

    def move(self, src: int, dst: int, length: int) -> None:
        """Slot `src`'s request now lives in slot `dst` (its first `length` cached positions)."""

    def release(self, slot: int) -> None:
        """Slot `slot` is free."""


class LlamaRunner:
    """Prefill and batched decode for Llama-family models, with a slot KV cache."""

    batched = True

    def __init__(self, model, slots: int, max_len: int, adapters: dict | None = None, quant: str | None = None,
                 pack: bool | None = None):
        import torch

        llama.check_supported(model)
        keep_freed_memory()  # a prefill reuses the memory the last one freed, instead of page-faulting (memory.py)
        self.quant = quant  # None, or "int8"/"int4": quantized projections (int8 also the LM head); bf16 activations
        self.model = model
        self.config = llama.LlamaConfig.from_hf(model.config)
        self.groups = self.config.heads // self.config.kv_heads
        self.scale = self.config.head_dim ** -0.5
        self.dtype = next(model.parameters()).dtype
        if quant and self.dtype != torch.bfloat16:
            raise ValueError(f"{quant} weights need a bfloat16 model (load it with dtype='bfloat16')")
        # Fused projections: one matmul for q|k|v and one for gate|up per layer
        # (fewer, larger kernels per decode step; the fused weights are copied once),
        # float32 ones also laid out for this CPU's fast kernels where that pays (quant.PackedWeight:
        # the engine's 1-row step 1.55x and 8-row step 2.27x faster than with F.linear on the AMD EPYC).
        # None: where it pays (float32 projections and head; int4's bf16 head, see LlamaWeights.from_hf)
        self.packed = quant != "int8" and (packing_pays(torch.float32 if quant else self.dtype) if pack is None else pack)
        self.weights = llama.LlamaWeights.from_hf(model, quant, pack=self.packed)
        self.adapters = adapters or {}
        self.cache = SlotKVCache(self.config.layers, slots, self.config.kv_heads, self.config.head_dim, max_len, self.dtype)
        self.torch = torch
        # RoPE cos/sin for every position, computed once (sin signed for llama.rotate); a step only indexes them.
        self.cos, sin = llama.rope_tables(self.config, max_len, self.dtype)
        self.sin = llama.signed_sin(sin)
        self.compiled = None  # the torch.compile'd decode step, once `compile()` ran

    # -- per-request LoRA ---------------------------------------------------------
    def _lora_hook(self, groups):
        """A llama.LoraHook adding each adapter's low-rank update to its own rows, or None without adapters."""
        import torch.nn.functional as F

        if not groups:
            return None

        def hook(out, x, layer: int, proj: llama.Projection):
            for part in proj.parts:
                for adapter, rows in groups:
                    factors = self.adapters[adapter].weights.get((layer, part.name))
                    if factors is None:
                        continue
                    a, b, scale = factors
                    inputs = x if rows is None else x[rows]
                    delta = F.linear(F.linear(inputs, a), b) * scale
                    if rows is None:
                        out[..., part.start:part.stop] += delta
                    else:
                        out[rows, ..., part.start:part.stop] += delta
            return out

        return hook

    # -- prompts ------------------------------------------------------------------
    def prefill(self, slot: int, ids: list[int], adapter: str | None, start: int = 0):
        """Run prompt positions start.. (0..start-1 already cached), fill the slot's cache, return the last position's logits [V]."""
        with self.torch.inference_mode():
            return llama.logits(self.config, self.weights, self._prompt_hidden(slot, ids, adapter, start, last_only=True)[:, -1])[0]

    def prefill_many(self, chunks: list[PromptChunk]):
        """Several prompts' chunks in one forward; logits [len(chunks), V] at each chunk's last position.

        The chunks' tokens are stacked as rows of one batch ([T, 1, hidden], like a decode step
        of T rows), so every projection reads its weight once for all of them: a prompt of a few
        tokens (a turn after a cached system prompt) costs about one decode step on its own, and
        8 of them about one 8-row step instead of 8. Attention runs per prompt, on its own slot.
        """
        torch = self.torch
        if len(chunks) == 1:
            slot, ids, adapter, start = chunks[0]
            return self.prefill(slot, ids, adapter, start=start).unsqueeze(0)
        import torch.nn.functional as F

        self.cache.grow(max(len(chunk.ids) for chunk in chunks) + 1)
        bounds, row = [], 0  # each chunk's rows in the stacked batch
        for chunk in chunks:
            bounds.append((row, row + len(chunk.ids) - chunk.start))
            row = bounds[-1][1]
        with torch.inference_mode():
            tokens = torch.tensor([token for chunk in chunks for token in chunk.ids[chunk.start:]], dtype=torch.long).unsqueeze(1)
            positions = torch.cat([torch.arange(chunk.start, len(chunk.ids)) for chunk in chunks])
            cos, sin = self.cos[positions].view(row, 1, 1, -1), self.sin[positions].view(row, 1, 1, -1)
            # A chunk after cached positions attends to them all, and causally within itself.
            masks = [None if chunk.start == 0 else
                     torch.arange(len(chunk.ids)).unsqueeze(0) <= torch.arange(chunk.start, len(chunk.ids)).unsqueeze(1) for chunk in chunks]

            def attend(i, q, k, v):
                keys, values = self.cache.keys[i], self.cache.values[i]
                outs = []
                for (slot, ids, _, start), (first, last), mask in zip(chunks, bounds, masks):
                    # rows first..last-1 as one sequence: [1, heads, length, head_dim]
                    q_chunk = q[first:last, :, 0].transpose(0, 1).unsqueeze(0)
                    k_chunk, v_chunk = k[first:last, :, 0].transpose(0, 1), v[first:last, :, 0].transpose(0, 1)
                    keys[slot, :, start:len(ids)] = k_chunk
                    values[slot, :, start:len(ids)] = v_chunk
                    if mask is None:
                        out = F.scaled_dot_product_attention(q_chunk, k_chunk.unsqueeze(0), v_chunk.unsqueeze(0), is_causal=True,
                                                             scale=self.scale, enable_gqa=self.groups > 1)
                    else:
                        out = causal_after_cached(q_chunk, k_chunk.unsqueeze(0), v_chunk.unsqueeze(0), keys[slot:slot + 1, :, :start],
                                                  values[slot:slot + 1, :, :start], self.scale, mask)
                    outs.append(out[0].transpose(0, 1).unsqueeze(2))  # back to [rows, heads, 1, head_dim]
                return torch.cat(outs)

            row_adapters = [chunk.adapter for chunk, (first, last) in zip(chunks, bounds) for _ in range(last - first)]
            hidden = llama.forward(self.config, self.weights, tokens, cos, sin, attend, self._lora_hook(_adapter_groups(row_adapters)))
            ends = torch.tensor([last - 1 for _, last in bounds])
            return llama.logits(self.config, self.weights, hidden[ends, 0])

    def prompt_logits(self, ids: list[int], adapter: str | None = None):
        """Logits at every position of `ids` [T, V], through the weights decoding uses (quality checks).

        Uses slot 0's cache: not while an engine runs on this runner.
        """
        with self.torch.inference_mode():
            return llama.logits(self.config, self.weights, self._prompt_hidden(0, ids, adapter))[0]

    def _prompt_hidden(self, slot: int, ids: list[int], adapter: str | None, start: int = 0, last_only: bool = False):
        """The final hidden states of prompt positions start.. [1, T - start, H] (the last one alone: `last_only`); fills the slot's cache."""
        torch = self.torch
        import torch.nn.functional as F

        stop = len(ids)
        self.cache.grow(stop + 1)
        with torch.inference_mode():
            tokens = torch.tensor([ids[start:]], dtype=torch.long)
            cos, sin = self.cos[start:stop], self.sin[start:stop]
            # A later chunk attends to everything cached before it, and causally within itself.
            mask = None if start == 0 else torch.arange(stop).unsqueeze(0) <= torch.arange(start, stop).unsqueeze(1)

            def attend(i, q, k, v):
                keys, values = self.cache.keys[i], self.cache.values[i]
                keys[slot, :, start:stop] = k[0]
                values[slot, :, start:stop] = v[0]
                if q.shape[2] == 1 < k.shape[2]:  # the last position alone (llama.block's last_only): it sees every position
                    return F.scaled_dot_product_attention(q, keys[slot:slot + 1, :, :stop], values[slot:slot + 1, :, :stop],
                                                          scale=self.scale, enable_gqa=self.groups > 1)
                if mask is None:
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale, enable_gqa=self.groups > 1)
                return causal_after_cached(q, k, v, keys[slot:slot + 1, :, :start], values[slot:slot + 1, :, :start], self.scale, mask)

            hook = self._lora_hook([(adapter, None)] if adapter else [])
            return llama.forward(self.config, self.weights, tokens, cos, sin, attend, hook, last_only=last_only)

    # -- decoding -----------------------------------------------------------------
    def decode(self, tokens: list[int], positions: list[int], adapters: list[str | None]):
        """One step for slots 0..B-1: row b feeds tokens[b] at positions[b]; returns logits [B, V]."""
        torch = self.torch

        length = max(positions) + 1
        self.cache.grow(length)
        with torch.inference_mode():
            tokens_t = torch.tensor(tokens, dtype=torch.long).unsqueeze(1)
            pos = torch.tensor(positions, dtype=torch.long)
            if self.compiled is not None and not any(adapters):
                return self.compiled(tokens_t, pos, self.cache.keys, self.cache.values, length)
            return self._decode(tokens_t, pos, self.cache.keys, self.cache.values, length, self._lora_hook(_adapter_groups(adapters)))

    def _decode(self, tokens, pos, keys: list, values: list, length: int, lora=None, weights=None):
        """The decode step on tensors (what `compile` hands to torch.compile, with its own `weights`): logits [B, V]."""
        torch = self.torch
        weights = self.weights if weights is None else weights
        config = self.config
        batch, kv_heads, head_dim = tokens.shape[0], config.kv_heads, config.head_dim
        cos, sin = self.cos[pos].view(batch, 1, 1, -1), self.sin[pos].view(batch, 1, 1, -1)
        # Per step, not per layer (a layer then runs 2 copies and 3 matmul-sized ops for its attention):
        # - where each row's new key and value go in a layer's cache seen as [slots × kv_heads × capacity, head_dim];
        # - row b may attend to positions 0..positions[b] of its own slot: an additive bias, -inf on the rest,
        #   [B × kv_heads, 1, length]. One row sees its whole slot (length is its position + 1): no bias.
        # Measured on the AMD EPYC (8 rows at length 110, 2 threads): 136 -> 83 us a layer against
        # index_put_ with advanced indexing plus matmul, masked_fill and a second matmul.
        capacity = keys[0].shape[2]
        heads_of_rows = torch.arange(batch).unsqueeze(1) * kv_heads + torch.arange(kv_heads).unsqueeze(0)
        cells = (heads_of_rows * capacity + pos.unsqueeze(1)).view(-1)
        # bf16 activations (bf16, int8, int4 weights): the attention's tiny bmms run in fp32, where they are ~5x faster
        # (int4, one stream, 2 threads, AMD EPYC: the step's bmms 3.08 -> 0.58 ms, the step 16.5 -> 13.6 ms)
        attention_dtype = torch.float32 if self.dtype == torch.bfloat16 else self.dtype
        bias = None
        if batch > 1:
            blocked = torch.arange(length).unsqueeze(0) > pos.unsqueeze(1)
            bias = torch.zeros(batch, length, dtype=attention_dtype).masked_fill_(blocked, float("-inf"))
            bias = bias.repeat_interleave(kv_heads, dim=0).unsqueeze(1)

        def attend(i, q, k, v):
            keys[i].view(-1, head_dim).index_copy_(0, cells, k.reshape(batch * kv_heads, head_dim))
            values[i].view(-1, head_dim).index_copy_(0, cells, v.reshape(batch * kv_heads, head_dim))
            # One query per row: plain batched matmuls beat the fused CPU kernel here.
            # Query heads are grouped under their KV head ([B × kv, groups, hd]),
            # so the cache is read as is (a strided view), never repeated per query head.
            grouped = q.reshape(batch * kv_heads, self.groups, head_dim)
            cached_keys = keys[i][:batch, :, :length].flatten(0, 1).transpose(1, 2)
            cached_values = values[i][:batch, :, :length].flatten(0, 1)
            if grouped.dtype != attention_dtype:
                grouped, cached_keys, cached_values = grouped.to(attention_dtype), cached_keys.to(attention_dtype), cached_values.to(attention_dtype)
            if bias is None:
                scores = torch.bmm(grouped, cached_keys) * self.scale
            else:
                scores = torch.baddbmm(bias, grouped, cached_keys, alpha=self.scale)
            out = torch.bmm(torch.softmax(scores, dim=-1, dtype=torch.float32).to(cached_values.dtype), cached_values)
            return out.to(q.dtype).view(batch, config.heads, 1, head_dim)

        hidden = llama.forward(config, weights, tokens, cos, sin, attend, lora)
        return llama.logits(config, weights, hidden[:, -1])

    def compile(self) -> float:
        """Compile the decode step with torch.compile (inductor) and warm it up; the seconds it took.

        An eager step runs ~40 small ops per layer from Python; inductor fuses the
        norms, RoPE and softmax into C++ loops, so a step costs little more than its
        matmuls. One graph with dynamic shapes serves every batch size and length
        (size 1 is compiled apart, so both are warmed up here, never inside a request).
        Rows with a LoRA adapter keep the eager step.

        Inductor keeps what it compiled (its FX-graph and AOTAutograd caches) on disk,
        here under the artifact folder (`compile_cache_dir()`, unless TORCHINDUCTOR_CACHE_DIR
        says otherwise), so a restart of the same model re-traces but does not recompile.
        """
        import dataclasses
        import functools
        import os
        import time

        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        torch = self.torch
        # Inductor writes its own default (/tmp/torchinductor_<user>) into the variable the first time
        # anything in the process asks for its cache: that one is replaced too, only a user's choice stays.
        if os.environ.get("TORCHINDUCTOR_CACHE_DIR") in (None, os.path.abspath(default_cache_dir())):
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(compile_cache_dir())
        start = time.perf_counter()
        # Inductor traces plain tensors, not oneDNN's opaque packed ones (it plans its own kernels): the
        # compiled step gets plain fused weights of its own, and the eager paths (prompts, LoRA rows) keep
        # the packed ones, whose kernel prefills faster than F.linear (a 1,000-token prompt 1.11x, quiet).
        # The price: the fused q|k|v and gate|up weights once more (~280 MB for the default model in fp32).
        plain = self.weights
        if self.packed:  # int4 packed only its bf16 head: the same int4 layers, with the model's own head
            plain = (dataclasses.replace(self.weights, lm_head=self.model.lm_head.weight) if self.quant
                     else llama.LlamaWeights.from_hf(self.model, None))
        compiled = torch.compile(functools.partial(self._decode, weights=plain), dynamic=True)
        self.cache.grow(2)
        with torch.inference_mode():
            for batch in (1, 2) if self.cache.slots > 1 else (1,):
                # writes position 1 of the first slots: free slots, overwritten by their next prefill
                compiled(torch.zeros(batch, 1, dtype=torch.long), torch.ones(batch, dtype=torch.long), self.cache.keys, self.cache.values, 2)
        self.compiled = compiled
        return time.perf_counter() - start

    def move(self, src: int, dst: int, length: int) -> None:
        with self.torch.inference_mode():  # the cache tensors are inference tensors: copying into them outside fails
            self.cache.move(src, dst, length)

    def release(self, slot: int) -> None:
        """Nothing to free: the slot is simply reused."""


def causal_after_cached(q, k, v, past_keys, past_values, scale: float, mask):
    """Causal attention of a prompt chunk that follows cached positions: [1, heads, length, head_dim].

    q, k, v are the chunk's own ([1, heads or kv_heads, length, head_dim]); past_keys/values the
    positions before it. Each query sees every cached position and its own chunk causally: two
    attentions, over the past (no mask) and over the chunk (is_causal on a square), merged by their
    log-sum-exps, softmax over both = lerp(own, past, σ(lse_past − lse_own)). One SDPA with the
    explicit mask (`mask`, [length, past + length], the fallback) makes the CPU kernel compute every
    block of the rectangle, where is_causal skips the blocks above the diagonal: a 1,020-token chunk
    after 16 cached tokens (a prompt after its cached chat-template system prompt: the TTFT row of
    bench_vllm_vs_ours.py) took 35.3 ms a layer masked and 24.0 ms in two parts, against 22.9 ms
    for the chunk alone (default model, 1 thread, CPU time at load ~3).
    """
    import torch
    import torch.nn.functional as F

    flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)  # the kernel SDPA runs, with its lse
    if flash is None or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, torch.cat([past_keys, k], dim=2), torch.cat([past_values, v], dim=2),
                                              attn_mask=mask, scale=scale, enable_gqa=q.shape[1] != k.shape[1])
    own, own_lse = flash(q, k, v, is_causal=True, scale=scale)  # grouped-query heads natively
    past, past_lse = flash(q, past_keys, past_values, scale=scale)
    weight = torch.sigmoid(past_lse - own_lse).unsqueeze(-1)  # fp32 (the kernel's accumulation type)
    if own.dtype != weight.dtype:  # bf16: merged in fp32, rounded once
        return torch.lerp(own.float(), past.float(), weight).to(own.dtype)
    return torch.lerp(own, past, weight)


UNUSED_COMPILE_CACHE_S = 30 * 24 * 3600  # a compile-cache folder unused this long is removed


def compile_cache_dir():
    """Inductor's on-disk cache for the compiled decode step: one folder per torch, CPU kernel set and engine source.

    Inductor's keys cover the traced graph, not everything its artifacts depend on: steps
    compiled in a run with the AVX2 kernel variables (ATEN_CPU_CAPABILITY=avx2 and friends)
    and an older engine, loaded later from the shared /tmp folder, returned wrong tokens
    and aborted the process on an index check inside a parallel loop (the test suite, 2026-12-08).
    """
    import hashlib
    import os
    import shutil
    import time
    from pathlib import Path

    import torch

    from ..paths import artifact_dir

    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):  # the engine's code, what the step is traced from
        digest.update(source.read_bytes())
    for variable in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"):
        digest.update(f"{variable}={os.environ.get(variable, '')};".encode())
    key = f"torch-{torch.__version__}-{torch.backends.cpu.get_cpu_capability().lower()}-{digest.hexdigest()[:12]}"
    folder = artifact_dir("compile-cache", key)  # its time stamp: when it was last used
    folder.touch()
    for other in folder.parent.iterdir():  # each upgrade leaves a folder nothing will read again
        if other.is_dir() and other.name.startswith("torch-") and time.time() - other.stat().st_mtime > UNUSED_COMPILE_CACHE_S:
            shutil.rmtree(other, ignore_errors=True)
    return folder


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

    batched = False

    def __init__(self, model, slots: int, max_len: int, adapters: dict | None = None):
        import torch

        if adapters:
            raise_unsupported_lora(model)
        keep_freed_memory()
        self.model = model
        self.caches: list = [None] * slots
        self.torch = torch

    def _forward(self, ids, cache):
        from transformers import DynamicCache

        cache = cache if cache is not None else DynamicCache(config=self.model.config)
        out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float(), cache

    def prefill(self, slot: int, ids: list[int], adapter: str | None, start: int = 0):
        if start:
            raise ValueError("the transformers fallback prefills a prompt whole (start must be 0)")
        with self.torch.inference_mode():
            logits, self.caches[slot] = self._forward(self.torch.tensor([ids]), None)
        return logits

    def prefill_many(self, chunks: list[PromptChunk]):
        return self.torch.stack([self.prefill(*chunk) for chunk in chunks])

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


def make_runner(model, slots: int, max_len: int, adapters: dict | None = None, quant: str | None = None) -> Runner:
    """The batched Llama runner when the architecture allows, else the generic one."""
    reason = llama.supports(model.config)
    if not reason:
        return LlamaRunner(model, slots, max_len, adapters, quant=quant)
    if quant:
        from ..errors import UserError

        raise UserError(f"{quant} weights are supported for Llama-architecture models; here {reason} (use bfloat16)")
    return HFRunner(model, slots, max_len, adapters)
