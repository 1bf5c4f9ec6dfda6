"""A character-level tokenizer: one token per character, bytes for the rest.

The vocabulary is every distinct character of the training text, sorted. A
character the text never showed is written as its UTF-8 bytes, one `<0xNN>`
token per byte (the "byte fallback" of SentencePiece and of `tokenizers`' BPE),
so `decode(encode(s)) == s` holds for any string. Turn the fallback off to get
the classic nanoGPT vocabulary (65 symbols for Tiny Shakespeare); unknown
characters are then an error.

Token ids: characters first (sorted), then the 256 byte tokens, then the
special tokens.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def split_special(text: str, special_tokens: list[str]) -> list[str]:
    """Cut text around special-token strings, keeping them as their own pieces.

    `tokenizers` does the same with added tokens, so "a<|endoftext|>b" gives
    the separator's id in both, not its characters.
    """
    if not special_tokens:
        return [text]
    pattern = "(" + "|".join(re.escape(t) for t in sorted(special_tokens, key=len, reverse=True)) + ")"
    return [piece for piece in re.split(pattern, text) if piece]


class CharTokenizer:
    """Map characters to ids and back."""

    kind = "char"

    def __init__(self, chars: list[str], byte_fallback: bool = True, special_tokens: list[str] | None = None):
        self.chars = list(chars)  # one entry per single-character token, in id order
        self.byte_fallback = byte_fallback  # encode unseen characters as <0xNN> byte tokens
        self.special_tokens = list(special_tokens or [])  # e.g. ["<|endoftext|>"], never produced by encode
        self.tokens = self.chars + (BYTE_TOKENS if byte_fallback else []) + self.special_tokens
        self.token_to_id = {tok: i for i, tok in enumerate(self.tokens)}
        self.char_to_id = {ch: i for i, ch in enumerate(self.chars)}
        self.byte_offset = len(self.chars)  # id of <0x00>

    # -- training ---------------------------------------------------------
    @classmethod
    def train(cls, text: str, byte_fallback: bool = True, special_tokens: list[str] | None = None) -> "CharTokenizer":
        """The vocabulary is the sorted set of characters in `text` (special tokens aside)."""
        specials = list(special_tokens or [])
        chars = set()
        for piece in split_special(text, specials):
            if piece not in specials:
                chars.update(piece)
        return cls(sorted(chars), byte_fallback, specials)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def eos_id(self) -> int | None:
        """Id of the first special token (the document separator), if any."""
        return self.token_to_id[self.special_tokens[0]] if self.special_tokens else None

    # -- encode / decode -------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in split_special(text, self.special_tokens):
            if piece in self.special_tokens:
                ids.append(self.token_to_id[piece])
            else:
                self._encode_plain(piece, ids)
        return ids

    def _encode_plain(self, text: str, ids: list[int]) -> None:
        for ch in text:
            i = self.char_to_id.get(ch)
            if i is not None:
                ids.append(i)
            elif self.byte_fallback:
                ids.extend(self.byte_offset + b for b in ch.encode("utf-8"))
            else:
                raise ValueError(f"character {ch!r} is not in the vocabulary and byte fallback is off")

    def decode(self, ids) -> str:
        """Characters as they are; runs of byte tokens are decoded as UTF-8 together."""
        out: list[str] = []
        pending = bytearray()
        n_chars, n_bytes = len(self.chars), (256 if self.byte_fallback else 0)
        for i in ids:
            i = int(i)
            if n_chars <= i < n_chars + n_bytes:
                pending.append(i - n_chars)
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            out.append(self.tokens[i])
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)

    # -- save / load -----------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars, "byte_fallback": self.byte_fallback, "special_tokens": self.special_tokens}

    @classmethod
    def from_dict(cls, data: dict) -> "CharTokenizer":
        return cls(data["chars"], data["byte_fallback"], data["special_tokens"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "CharTokenizer":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
