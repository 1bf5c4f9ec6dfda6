"""A slot-based KV cache for a batch of requests that come and go.

Layout per layer: keys and values of shape [slots, kv_heads, capacity, head_dim].
Running request i lives in slot i, and the running slots are always 0..B-1:
when a request leaves, the last one moves into its slot (one copy of its
rows), so a decode step reads the plain view `[:B, :, :T]`, never a gather.

Memory: 2 (K and V) × layers × kv_heads × head_dim × tokens × bytes per value
for each request. The capacity grows by doubling, up to the context length,
so short chats do not pay for the longest possible one.
"""

from __future__ import annotations


class SlotKVCache:
    """Per-layer K/V tensors with one slot per running request."""

    def __init__(self, layers: int, slots: int, kv_heads: int, head_dim: int, max_len: int, dtype, initial: int = 256):
        self.layers, self.slots, self.kv_heads, self.head_dim = layers, slots, kv_heads, head_dim
        self.max_len = max_len  # never grow past the model's context
        self.dtype = dtype
        self.capacity = 0
        self.keys: list = []
        self.values: list = []
        self.grow(min(initial, max_len))

    def grow(self, needed: int) -> None:
        """Make room for `needed` positions per slot (doubling; copies what is there)."""
        import torch

        if needed <= self.capacity:
            return
        new = min(self.max_len, max(needed, 2 * self.capacity))
        shape = (self.slots, self.kv_heads, new, self.head_dim)
        keys = [torch.zeros(shape, dtype=self.dtype) for _ in range(self.layers)]
        values = [torch.zeros(shape, dtype=self.dtype) for _ in range(self.layers)]
        for old, fresh in zip(self.keys + self.values, keys + values):
            fresh[:, :, : self.capacity].copy_(old)
        self.keys, self.values, self.capacity = keys, values, new

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy slot `src`'s first `length` positions into slot `dst`."""
        for tensor in self.keys + self.values:
            tensor[dst, :, :length].copy_(tensor[src, :, :length])

    def nbytes(self) -> int:
        """Bytes held by the cache tensors now."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)

    @staticmethod
    def bytes_per_token(layers: int, kv_heads: int, head_dim: int, bytes_per_value: int) -> int:
        """2 × layers × kv_heads × head_dim × bytes: the cost of one cached token."""
        return 2 * layers * kv_heads * head_dim * bytes_per_value
