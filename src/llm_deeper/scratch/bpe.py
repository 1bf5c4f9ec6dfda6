"""Byte-level BPE (the GPT-2 scheme), trained from scratch.

1. Pre-tokenize: cut text into chunks with GPT-2's rule (contractions, runs
   of letters, of digits, of other symbols, each with one optional leading
   space; whitespace runs). Merges never cross a chunk boundary.
2. Every chunk is a sequence of its UTF-8 bytes (256 base tokens), so any
   string can be encoded: nothing is ever unknown.
3. Training repeatedly merges the most frequent adjacent pair into a new
   token; the ordered list of merges *is* the tokenizer.
4. Encoding a chunk applies merges by rank (earliest learned first) until
   none applies; decoding concatenates the bytes of each token.

For export, tokens are spelled with GPT-2's byte-to-unicode alphabet, so the
vocab and merges load unchanged into `tokenizers`' BPE model (the parity test
checks both give the same ids).
"""

from __future__ import annotations

import heapq
import json
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

from .char_tokenizer import split_special

# Unicode White_Space (what `\s` matches in the regex engine `tokenizers` uses).
WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")


def char_class(ch: str) -> str:
    """'s' whitespace, 'L' letter, 'N' number, 'P' anything else."""
    if ch in WHITESPACE:
        return "s"
    cat = unicodedata.category(ch)[0]
    return cat if cat in "LN" else "P"


def pretokenize(text: str) -> list[str]:
    """GPT-2's split, `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`.

    Written as a scan instead of a regex because Python's `re` has no \\p{L}.
    """
    chunks, i, n = [], 0, len(text)
    classes = [char_class(ch) for ch in text]
    while i < n:
        if text[i] == "'":
            tail = next((c for c in CONTRACTIONS if text.startswith(c, i + 1)), None)
            if tail is not None:
                chunks.append(text[i : i + 1 + len(tail)])
                i += 1 + len(tail)
                continue
        # " ?X+" for X in letters, numbers, other: an optional space, then a run.
        start = i + 1 if text[i] == " " and i + 1 < n and classes[i + 1] != "s" else i
        if classes[start] != "s":
            kind, j = classes[start], start
            while j < n and classes[j] == kind:
                j += 1
            chunks.append(text[i:j])
            i = j
            continue
        # Whitespace: the whole run if it ends the text or precedes whitespace;
        # otherwise leave its last character to lead the next chunk (" word").
        j = i
        while j < n and classes[j] == "s":
            j += 1
        if j < n and j - i > 1:
            j -= 1
        chunks.append(text[i:j])
        i = j
    return chunks


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


class BPETokenizer:
    """Byte-level BPE: ids 0-255 are bytes, then one id per merge, then specials."""

    kind = "bpe"

    def __init__(self, merges: list[tuple[int, int]], special_tokens: list[str] | None = None):
        self.merges = [tuple(m) for m in merges]  # (left id, right id) in the order they were learned
        self.special_tokens = list(special_tokens or [])  # never produced from plain text
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}  # pair -> merge rank
        self.token_bytes: list[bytes] = [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            self.token_bytes.append(self.token_bytes[a] + self.token_bytes[b])
        self.special_ids = {tok: 256 + len(self.merges) + k for k, tok in enumerate(self.special_tokens)}
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(self.special_tokens)

    @property
    def eos_id(self) -> int | None:
        return self.special_ids[self.special_tokens[0]] if self.special_tokens else None

    # -- training ---------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: list[str] | None = None, min_frequency: int = 2) -> "BPETokenizer":
        """Learn `vocab_size - 256 - len(special_tokens)` merges from `text`."""
        specials = list(special_tokens or [])
        n_merges = vocab_size - 256 - len(specials)
        if n_merges < 0:
            raise ValueError(f"vocab_size {vocab_size} is below the 256 byte tokens plus {len(specials)} special tokens")
        counts: Counter[str] = Counter()
        for piece in split_special(text, specials):
            if piece not in specials:
                counts.update(pretokenize(piece))
        words = [list(chunk.encode("utf-8")) for chunk in counts]
        freqs = list(counts.values())
        merges = learn_merges(words, freqs, n_merges, min_frequency)
        return cls(merges, specials)

    # -- encode / decode -------------------------------------------------
    def encode_chunk(self, chunk: str) -> list[int]:
        """Apply merges to one pre-token, lowest rank first (GPT-2's loop)."""
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, 1 << 30))
            rank = self.ranks.get(pair)
            if rank is None:
                break
            ids = merge_pair(ids, pair, 256 + rank)
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in split_special(text, self.special_tokens):
            if piece in self.special_ids:
                ids.append(self.special_ids[piece])
            else:
                for chunk in pretokenize(piece):
                    ids.extend(self.encode_chunk(chunk))
        return ids

    def decode(self, ids) -> str:
        out, pending = [], bytearray()
        n_plain = 256 + len(self.merges)
        for i in ids:
            i = int(i)
            if i < n_plain:
                pending += self.token_bytes[i]
            else:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
                out.append(self.special_tokens[i - n_plain])
        out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)

    # -- the GPT-2 spelling used by `tokenizers` -------------------------
    def vocab_and_merges(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """Vocab {token string: id} and merges [(left, right)] in byte-to-unicode spelling."""
        b2u = bytes_to_unicode()
        spell = [("".join(b2u[b] for b in tb)) for tb in self.token_bytes]
        vocab = {s: i for i, s in enumerate(spell)}
        vocab.update(self.special_ids)
        return vocab, [(spell[a], spell[b]) for a, b in self.merges]

    # -- save / load -----------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": self.kind, "merges": [list(m) for m in self.merges], "special_tokens": self.special_tokens}

    @classmethod
    def from_dict(cls, data: dict) -> "BPETokenizer":
        return cls([tuple(m) for m in data["merges"]], data["special_tokens"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "BPETokenizer":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair`, left to right."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def learn_merges(words: list[list[int]], freqs: list[int], n_merges: int, min_frequency: int = 2) -> list[tuple[int, int]]:
    """The BPE training loop with incremental pair counts.

    Counting every pair again after each merge is quadratic; instead keep
    pair -> count and pair -> words containing it, and after a merge update
    only the words that held the merged pair. A heap finds the most frequent
    pair (stale heap entries are skipped when popped). Ties go to the smaller
    pair of ids, so training is deterministic.
    """
    pair_counts: defaultdict[tuple[int, int], int] = defaultdict(int)
    where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
    for w, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(w)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg:
            continue  # stale entry: the count changed since it was pushed
        if -neg < min_frequency:
            break
        new_id = 256 + len(merges)
        merges.append(pair)
        changed: set[tuple[int, int]] = set()
        for w in list(where[pair]):
            word, freq = words[w], freqs[w]
            for old in zip(word, word[1:]):
                pair_counts[old] -= freq
                changed.add(old)
            word = merge_pair(word, pair, new_id)
            words[w] = word
            for new in zip(word, word[1:]):
                pair_counts[new] += freq
                where[new].add(w)
                changed.add(new)
        del pair_counts[pair], where[pair]
        for p in changed:
            count = pair_counts.get(p, 0)
            if count > 0:
                heapq.heappush(heap, (-count, p))
            elif p in pair_counts:
                del pair_counts[p]
    return merges
