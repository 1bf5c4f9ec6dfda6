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
request's step time. For the same reason each token decodes only a short
window of ids (the tokens since the text last ended on a whole character,
plus the ones before them for context, as vLLM and transformers' streamers
do), not the whole reply: decoding all ids every token cost 0.4 ms a token
per stream by token 1,000 (quadratic; 297 ms over a 1,024-token reply). Limits: MAX_STOPS strings of at most MAX_STOP_CHARS
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
        self.settled = ""  # the decoded text of ids[:read_offset]: it ends on a whole character
        self.prefix_offset = 0  # ids[prefix_offset:read_offset] are decoded again as context for the new ones
        self.read_offset = 0  # ids from here on are not in `settled` yet
        self.text = ""  # the reply so far, stop string excluded once found
        self.emitted = 0  # characters of `text` already handed out
        self.stopped = False  # a stop string was found
        self.matched: str | None = None  # ... and which one

    def add(self, token_id: int) -> str:
        """Add one token; return the text that is now safe to show (maybe "")."""
        self.ids.append(token_id)
        full = self._decode_new()
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

    def _decode_new(self) -> str:
        """The whole reply's text, decoding only the ids since the last whole character (and their context).

        Decoding the window with and without the new ids and keeping the difference keeps what a
        tokenizer does at the start of a text (a SentencePiece decoder drops a leading space) out of it.
        """
        decode = self.tokenizer.decode
        context = decode(self.ids[self.prefix_offset:self.read_offset], skip_special_tokens=True)
        window = decode(self.ids[self.prefix_offset:], skip_special_tokens=True)
        full = self.settled + window[len(context):]
        if not window.endswith("\ufffd"):  # whole characters: the next token decodes from here
            self.settled = full
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return full

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
