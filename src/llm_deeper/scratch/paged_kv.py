"""PagedAttention's KV cache and prefix caching, from scratch (numpy).

A server that reserves one contiguous cache of the maximum length per request wastes most of
it: replies end early, and memory reserved for one request cannot serve another. vLLM's
PagedAttention (Kwon et al. 2023) splits the cache into fixed-size *blocks* (pages) of, say,
16 tokens, hands them out as a sequence grows, and keeps a *block table* per sequence: logical
block i → physical block. Attention reads the sequence's keys and values through its table.
The waste is at most one partly filled block per sequence.

Prefix caching falls out of the same layout: a *full* block is identified by a hash of its
tokens and of everything before it, so a new request whose prompt starts the same way (the
same system prompt, the same tool schemas) points its table at the blocks that already exist
instead of computing them again. Blocks are reference-counted; a freed block stays cached
until its memory is needed. Only full blocks are shared, so a sequence never writes into a
block another one reads (no copy-on-write needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PagedKVCache:
    """K and V for many sequences in `num_blocks` blocks of `block_size` tokens (one layer)."""

    num_blocks: int  # physical blocks in the pool
    block_size: int  # tokens per block
    kv_heads: int  # key/value heads
    head_dim: int  # size of each head
    keys: np.ndarray = field(init=False)  # [num_blocks, block_size, kv_heads, head_dim]
    values: np.ndarray = field(init=False)
    tables: dict = field(default_factory=dict)  # sequence id → list of physical block ids
    lengths: dict = field(default_factory=dict)  # sequence id → tokens stored
    tokens: dict = field(default_factory=dict)  # sequence id → its token ids (for prefix hashes)
    refcount: np.ndarray = field(init=False)  # sequences using each block
    by_hash: dict = field(default_factory=dict)  # prefix hash → physical block holding that full block
    hash_of: dict = field(default_factory=dict)  # physical block → its prefix hash (full blocks only)
    free: list = field(init=False)  # never-used or released blocks, oldest first

    def __post_init__(self) -> None:
        shape = (self.num_blocks, self.block_size, self.kv_heads, self.head_dim)
        self.keys, self.values = np.zeros(shape), np.zeros(shape)
        self.refcount = np.zeros(self.num_blocks, dtype=int)
        self.free = list(range(self.num_blocks))

    # ── blocks ──────────────────────────────────────────────────────────────
    def _take_block(self) -> int:
        """A free block; a cached block nobody uses is evicted (its hash forgotten) when needed."""
        for i, block in enumerate(self.free):
            if self.refcount[block] == 0:
                del self.free[i]
                if block in self.hash_of:
                    del self.by_hash[self.hash_of.pop(block)]
                return block
        raise MemoryError("the KV cache is full: a server would preempt or queue the request")

    def prefix_hashes(self, token_ids: list[int]) -> list[int]:
        """One hash per full block: of the block's tokens and of the hash before it (so the whole prefix)."""
        hashes, previous = [], 0
        for start in range(0, len(token_ids) - self.block_size + 1, self.block_size):
            previous = hash((previous, tuple(token_ids[start:start + self.block_size])))
            hashes.append(previous)
        return hashes

    # ── sequences ───────────────────────────────────────────────────────────
    def add_sequence(self, seq: str, token_ids: list[int]) -> int:
        """Start a sequence; its table takes every cached full block its prompt starts with.

        Returns how many prompt tokens are already in the cache (their K/V need no compute).
        At least one token is always left to compute, since the last position's logits are needed.
        """
        table = []
        for h in self.prefix_hashes(token_ids[:-1]):
            block = self.by_hash.get(h)
            if block is None:
                break
            if self.refcount[block] == 0:
                self.free.remove(block)
            self.refcount[block] += 1
            table.append(block)
        self.tables[seq], self.lengths[seq] = table, len(table) * self.block_size
        self.tokens[seq] = list(token_ids[:self.lengths[seq]])
        return self.lengths[seq]

    def append(self, seq: str, token_ids: list[int], k: np.ndarray, v: np.ndarray) -> None:
        """Store K and V ([tokens, kv_heads, head_dim]) of the next tokens of `seq`, taking blocks as needed."""
        for token, k_row, v_row in zip(token_ids, k, v, strict=True):
            position = self.lengths[seq]
            if position % self.block_size == 0:
                block = self._take_block()
                self.refcount[block] = 1
                self.tables[seq].append(block)
            block, slot = self.tables[seq][position // self.block_size], position % self.block_size
            self.keys[block, slot], self.values[block, slot] = k_row, v_row
            self.lengths[seq] += 1
            self.tokens[seq].append(token)
            if self.lengths[seq] % self.block_size == 0:  # a block just filled: publish it for prefix hits
                h = self.prefix_hashes(self.tokens[seq])[-1]
                if h not in self.by_hash:
                    self.by_hash[h], self.hash_of[block] = block, h

    def gather(self, seq: str) -> tuple[np.ndarray, np.ndarray]:
        """The sequence's K and V as contiguous [tokens, kv_heads, head_dim] arrays, read through its table."""
        n, table = self.lengths[seq], self.tables[seq]
        return (self.keys[table].reshape(-1, self.kv_heads, self.head_dim)[:n],
                self.values[table].reshape(-1, self.kv_heads, self.head_dim)[:n])

    def release(self, seq: str) -> None:
        """A finished sequence gives its blocks back; full ones stay cached for later prefix hits."""
        for block in self.tables.pop(seq):
            self.refcount[block] -= 1
            if self.refcount[block] == 0:
                self.free.append(block)
        del self.lengths[seq], self.tokens[seq]

    def blocks_in_use(self) -> int:
        return int((self.refcount > 0).sum())


def paged_attention(q: np.ndarray, cache: PagedKVCache, seq: str) -> np.ndarray:
    """One decode step's attention: q [heads, head_dim] over the sequence's cached keys (GQA groups)."""
    keys, values = cache.gather(seq)
    group = q.shape[0] // cache.kv_heads
    k, v = np.repeat(keys, group, axis=1), np.repeat(values, group, axis=1)  # [tokens, heads, head_dim]
    scores = np.einsum("hd,thd->ht", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("ht,thd->hd", weights, v)
