"""Token ids in, safe text pieces out, with stop strings cut off.

Streaming text one token at a time has two traps:
- a token can end in the middle of a UTF-8 character (the decoder shows
  "\ufffd" until the next token completes it), so such text is held back;
- a stop string can span several tokens, so the tail of the text that could
  still grow into a stop string is held back until it either completes (we
  stop, and the stop string is not part of the reply) or cannot anymore.

Stops are matched in one compiled pass per token (a regular expression for
the match, a set of prefixes for the held-back tail), not a Python loop over
every stop string: this runs inside the engine thread, so its cost is every
request's step time. Limits: MAX_STOPS strings of at most MAX_STOP_CHARS
characters. OpenAI allows 4 stops; we allow 16 because clients send one
per chat-template end marker and agent framework (ReAct's "Observation:")
they support. The length cap bounds the text a stream holds back (up to the
longest stop less one character) and the tail each step re-reads.
"""

from __future__ import annotations

import re

MAX_STOPS = 16  # stop strings per request (OpenAI: 4)
MAX_STOP_CHARS = 128  # characters per stop string


def check_stops(stops) -> None:
    """Raise ValueError naming the limit a stop list breaks (the server and SamplingConfig both call this)."""
    if len(stops) > MAX_STOPS:
        raise ValueError(f"at most {MAX_STOPS} stop strings are allowed, got {len(stops):,}")
    longest = max((len(s) for s in stops), default=0)
    if longest > MAX_STOP_CHARS:
        raise ValueError(f"a stop string may have at most {MAX_STOP_CHARS} characters, got one with {longest:,}")


class TextTracker:
    """Detokenize a growing reply and detect stop strings."""

    def __init__(self, tokenizer, stop: tuple[str, ...] | list[str] = ()):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        # Longest first: at one position the longer of two overlapping stops is the one matched.
        self.pattern = re.compile("|".join(re.escape(s) for s in sorted(self.stop, key=len, reverse=True))) if self.stop else None
        self.longest = max((len(s) for s in self.stop), default=0)
        self.prefixes = {s[:n] for s in self.stop for n in range(1, len(s))}  # what a tail that may still grow into a stop looks like
        self.ids: list[int] = []
        self.text = ""  # the reply so far, stop string excluded once found
        self.emitted = 0  # characters of `text` already handed out
        self.stopped = False  # a stop string was found
        self.matched: str | None = None  # ... and which one

    def add(self, token_id: int) -> str:
        """Add one token; return the text that is now safe to show (maybe "")."""
        self.ids.append(token_id)
        full = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if self.pattern is not None:
            # A new match can only end inside the newly decoded tail.
            hit = self.pattern.search(full, max(0, len(self.text) - self.longest))
            if hit:
                self.matched = hit.group()
                self.text = full[:hit.start()]
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
        for n in range(min(self.longest - 1, len(text)), 0, -1):
            if text[-n:] in self.prefixes:
                return n
        return 0
