"""Token ids in, safe text pieces out, with stop strings cut off.

Streaming text one token at a time has two traps:
- a token can end in the middle of a UTF-8 character (the decoder shows
  "\ufffd" until the next token completes it), so such text is held back;
- a stop string can span several tokens, so the tail of the text that could
  still grow into a stop string is held back until it either completes (we
  stop, and the stop string is not part of the reply) or cannot anymore.
"""

from __future__ import annotations


class TextTracker:
    """Detokenize a growing reply and detect stop strings."""

    def __init__(self, tokenizer, stop: tuple[str, ...] | list[str] = ()):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.ids: list[int] = []
        self.text = ""  # the reply so far, stop string excluded once found
        self.emitted = 0  # characters of `text` already handed out
        self.stopped = False  # a stop string was found
        self.matched: str | None = None  # ... and which one

    def add(self, token_id: int) -> str:
        """Add one token; return the text that is now safe to show (maybe "")."""
        self.ids.append(token_id)
        full = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if self.stop:
            # A new match can only end inside the newly decoded tail.
            start = max(0, len(self.text) - max(len(s) for s in self.stop))
            hits = [(i, s) for i, s in ((full.find(s, start), s) for s in self.stop) if i >= 0]
            if hits:
                at, self.matched = min(hits)
                self.text = full[:at]
                self.stopped = True
                return self._take(len(self.text))
        self.text = full
        safe = len(full)
        if full.endswith("\ufffd"):
            safe = len(full.rstrip("\ufffd"))
        safe -= self._stop_prefix_length(full[:safe])
        return self._take(max(safe, self.emitted))

    def finish(self) -> str:
        """The held-back rest, when generation ended for another reason."""
        return self._take(len(self.text))

    def _take(self, end: int) -> str:
        piece = self.text[self.emitted:end]
        self.emitted = max(self.emitted, end)
        return piece

    def _stop_prefix_length(self, text: str) -> int:
        """Length of the longest suffix of `text` that begins some stop string."""
        best = 0
        for stop in self.stop:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best
