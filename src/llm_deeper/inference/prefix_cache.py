"""Automatic prefix caching: the KV of prompt prefixes, kept in blocks and reused by later requests.

Tool-calling traffic repeats one long system prompt (the tool schemas) on every
request and every agent turn. Computing its keys and values once and reusing
them turns a ~2 s prefill of a 1,000-token prompt into the prefill of the few
new tokens after it.

The idea is vLLM's automatic prefix caching: a prompt is cut into blocks of
`BLOCK_TOKENS` tokens, and a block is identified by its own tokens together
with everything before it, so a block key is (the key of the block before, this
block's tokens), and the first block's "block before" is the LoRA adapter (a
prefix computed under one adapter has other keys and values than under another
or the base model). The keys form a tree, as in SGLang's radix cache; we match
whole blocks only. Only full blocks are cached, and a match always leaves at
least the prompt's last token to compute (its logits give the first reply token).

Where ours differs: the engine decodes from one contiguous cache per running
request (kv_cache.SlotKVCache: a decode step reads a plain view, never a
gather), so a hit is a copy: the matched blocks are copied into the request's
slot (a 1,000-token prefix of the default model is 46 MB in fp32, a few ms),
and after prefill the request's new full blocks are copied into the store. No
block is shared by a running request, so there are no reference counts: any
block can be evicted at any time, least recently used first. A match or a save
touches its blocks from the last to the first, so a block is never less recently
used than the blocks after it: eviction takes leaves first and never strands a
cached block behind a missing one.

Memory: a fixed budget of blocks, `2 × layers × kv_heads × head_dim × bytes`
per token (kv_cache.SlotKVCache.bytes_per_token), allocated once at the first
save (`torch.empty`: pages never written cost no memory).
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass

from .kv_cache import SlotKVCache

# Tokens per block. vLLM's default; a hit is rounded down to whole blocks, so a
# 1,000-token system prompt loses at most 15 tokens of reuse at the boundary.
BLOCK_TOKENS = 16


@dataclass
class Block:
    """One cached block: which store row holds its keys and values, and its key in the tree."""

    id: int  # unique for the life of the store (its children's keys name it; a row is reused, an id never)
    row: int  # its row in the store's tensors
    key: tuple  # (the block before: its id, or ("adapter", name) for a first block; this block's tokens)


@dataclass
class PrefixMatch:
    """The cached blocks that begin a prompt."""

    blocks: list[Block]
    tokens: int  # positions they cover (len(blocks) × BLOCK_TOKENS)


class PrefixCache:
    """A least-recently-used store of KV blocks keyed by token prefix and adapter."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, dtype, budget_bytes: int, block_tokens: int = BLOCK_TOKENS):
        import torch

        self.layers, self.kv_heads, self.head_dim, self.dtype = layers, kv_heads, head_dim, dtype
        self.block_tokens = block_tokens
        self.bytes_per_token = SlotKVCache.bytes_per_token(layers, kv_heads, head_dim, torch.empty((), dtype=dtype).element_size())
        self.capacity = max(0, budget_bytes) // (self.bytes_per_token * block_tokens)  # blocks the budget holds
        self.budget_bytes = self.capacity * self.bytes_per_token * block_tokens
        self.store = None  # [layers, 2 (K, V), kv_heads, capacity, block_tokens, head_dim], made at the first save
        self.index: dict[tuple, Block] = {}
        self.recency: collections.OrderedDict[int, Block] = collections.OrderedDict()  # block id → block, least recent first
        self.free_rows = list(range(self.capacity - 1, -1, -1))
        self._ids = itertools.count()
        # Counters for /metrics (the engine thread writes them; readers only read).
        self.lookups = 0  # prompts looked up
        self.lookup_tokens = 0  # prompt tokens looked up
        self.hit_tokens = 0  # of those, tokens whose KV came from the store
        self.hits = 0  # prompts that reused at least one block
        self.evictions = 0  # blocks dropped to make room

    @classmethod
    def for_cache(cls, cache: SlotKVCache, budget_bytes: int) -> "PrefixCache":
        """A store whose blocks fit `cache`'s layout (layers, heads, dtype)."""
        return cls(cache.layers, cache.kv_heads, cache.head_dim, cache.dtype, budget_bytes)

    # -- lookups ----------------------------------------------------------------------
    def match(self, adapter: str | None, ids: list[int]) -> PrefixMatch:
        """The longest run of cached blocks that begins `ids`, leaving at least its last token uncached."""
        blocks = list(self._walk(adapter, ids, (len(ids) - 1) // self.block_tokens))
        self._touch(blocks)
        tokens = len(blocks) * self.block_tokens
        self.lookups += 1
        self.lookup_tokens += len(ids)
        self.hit_tokens += tokens
        self.hits += bool(blocks)
        return PrefixMatch(blocks, tokens)

    def cached_length(self, adapter: str | None, ids: list[int]) -> int:
        """The tokens `match` would give `ids` now, without counting a lookup or touching the blocks."""
        return sum(1 for _ in self._walk(adapter, ids, (len(ids) - 1) // self.block_tokens)) * self.block_tokens

    def load(self, match: PrefixMatch, cache: SlotKVCache, slot: int) -> None:
        """Copy the matched blocks into positions 0..match.tokens-1 of `slot`."""
        import torch

        if not match.blocks:
            return
        cache.grow(match.tokens + 1)
        rows = torch.tensor([block.row for block in match.blocks])
        shape = (self.kv_heads, match.tokens, self.head_dim)
        for layer in range(self.layers):
            for kind, target in enumerate((cache.keys[layer], cache.values[layer])):
                target[slot, :, :match.tokens] = self.store[layer, kind].index_select(1, rows).view(shape)

    # -- saving -------------------------------------------------------------------------
    def save(self, adapter: str | None, ids: list[int], length: int, cache: SlotKVCache, slot: int) -> None:
        """Keep the full blocks among positions 0..length-1 of `slot`, whose tokens are `ids[:length]`."""
        import torch

        wanted = min(length, len(ids)) // self.block_tokens
        if not self.capacity or not wanted:
            return
        chain = list(self._walk(adapter, ids, wanted))
        self._touch(chain)  # what is cached already is most recent now: room is made from other prompts' blocks
        new: list[tuple[int, Block]] = []  # (block number in the prompt, block)
        in_chain = {block.id for block in chain}
        parent = chain[-1].id if chain else ("adapter", adapter)
        for number in range(len(chain), wanted):
            row = self._free_row(in_chain)
            if row is None:
                break  # the budget is smaller than this one prompt
            block = Block(next(self._ids), row, (parent, tuple(ids[number * self.block_tokens:(number + 1) * self.block_tokens])))
            self.index[block.key] = block
            chain.append(block)
            in_chain.add(block.id)
            new.append((number, block))
            parent = block.id
        if new:
            if self.store is None:
                self.store = torch.empty((self.layers, 2, self.kv_heads, self.capacity, self.block_tokens, self.head_dim), dtype=self.dtype)
            numbers = torch.tensor([number for number, _ in new])
            rows = torch.tensor([block.row for _, block in new])
            span = wanted * self.block_tokens
            for layer in range(self.layers):
                for kind, source in enumerate((cache.keys[layer], cache.values[layer])):
                    blocks = source[slot, :, :span].view(self.kv_heads, wanted, self.block_tokens, self.head_dim)
                    self.store[layer, kind].index_copy_(1, rows, blocks.index_select(1, numbers))
        self._touch(chain)

    # -- the tree and its recency -----------------------------------------------------------
    def _walk(self, adapter: str | None, ids: list[int], most: int):
        """Cached blocks matching the first `most` blocks of `ids`, in order, until the first miss."""
        parent: object = ("adapter", adapter)
        for number in range(most):
            block = self.index.get((parent, tuple(ids[number * self.block_tokens:(number + 1) * self.block_tokens])))
            if block is None:
                return
            yield block
            parent = block.id

    def _touch(self, chain: list[Block]) -> None:
        """Mark a chain used, its first block last: a block is never older than the blocks after it."""
        for block in reversed(chain):
            self.recency[block.id] = block
            self.recency.move_to_end(block.id)

    def _free_row(self, keep: set[int]) -> int | None:
        """A store row for a new block, evicting the least recently used block if none is free."""
        if self.free_rows:
            return self.free_rows.pop()
        if not self.recency:
            return None
        oldest = next(iter(self.recency.values()))
        if oldest.id in keep:
            return None
        del self.recency[oldest.id]
        del self.index[oldest.key]
        self.evictions += 1
        return oldest.row

    # -- reporting ----------------------------------------------------------------------
    @property
    def cached_tokens(self) -> int:
        """Tokens held now."""
        return len(self.recency) * self.block_tokens

    def stats(self) -> dict:
        """The budget and the counters (for /health and /metrics)."""
        return {
            "enabled": True,
            "budget_bytes": self.budget_bytes,
            "budget_tokens": self.capacity * self.block_tokens,
            "block_tokens": self.block_tokens,
            "cached_tokens": self.cached_tokens,
            "lookups": self.lookups,
            "hits": self.hits,
            "lookup_tokens": self.lookup_tokens,
            "hit_tokens": self.hit_tokens,
            "hit_rate": self.hit_tokens / self.lookup_tokens if self.lookup_tokens else 0.0,
            "evictions": self.evictions,
        }

    def describe(self) -> str:
        """One line for the server's start-up log."""
        return (f"prefix cache: {self.budget_bytes / 2**20:.0f} MiB, up to {self.capacity * self.block_tokens:,} tokens "
                f"({self.bytes_per_token / 1024:.1f} KiB each, {self.block_tokens}-token blocks, per prompt prefix and adapter)")
