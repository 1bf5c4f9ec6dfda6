"""Where the calls are: a model's output split into plain text and call text.

`CallScanner` takes the output piece by piece and gives back its own pieces,
in order: `("text", s)` plain text; `("call", opening)` a call starts (after
its marker or separator); `("body", s)` the call's JSON text; `("end", "")` its
object closed (or what followed the opening was no object), or `("cut", "")`
the output ended inside it. Whole-text parsing and streaming both read calls
through it, so both cut every output at the same places.

Text rules, the same for every format: whitespace right before a call, right
after one and at the end of the output is dropped; text that could still grow
into the start marker waits for the next piece.
"""

from __future__ import annotations

from .json_text import WHITESPACE, ObjectText


class CallScanner:
    """Splits one output in one format (`base.ToolCallFormat`) into text and calls."""

    def __init__(self, fmt) -> None:
        self.fmt = fmt
        self.pending = ""  # text not decided yet
        self.call: ObjectText | None = None  # the call being read; None outside calls
        self.after: str | None = None  # "call": a call's end marker or a separator may follow; "end": it did
        self.at_start = fmt.bare_json  # only whitespace so far: a bare JSON object may open a call
        self.in_array = False  # inside a bare JSON array of calls
        self.out: list[tuple[str, str]] = []

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.pending += text
        return self._run(final=False)

    def finish(self) -> list[tuple[str, str]]:
        """The last pieces: held text, and a call the output ended inside."""
        out = self._run(final=True) + ([("cut", "")] if self.call is not None else [])
        self.call, self.pending = None, ""  # a partial end marker or whitespace after a call is dropped
        return out

    def _run(self, final: bool) -> list[tuple[str, str]]:
        """Read the pending text as far as it is decided; the pieces it made."""
        moved = True
        while self.pending and moved:
            if self.call is not None:
                moved = self._in_call()
            elif self.after:
                moved = self._after_call()
            else:
                moved = self._in_text(final)
        out, self.out = self.out, []
        return out

    def _open(self, opening: str, rest: str) -> bool:
        self.out.append(("call", opening))
        self.call, self.pending, self.at_start, self.after = ObjectText(), rest, False, None
        return True

    def _in_text(self, final: bool) -> bool:
        text, start = self.pending, self.fmt.start
        stripped = text.lstrip(WHITESPACE)
        if self.at_start and stripped[:1] == "{":
            return self._open("", stripped)
        if self.at_start and stripped[:1] == "[" and self.fmt.bare_array:
            self.in_array = True
            return self._open("[", stripped[1:])
        if stripped and not (start or "").startswith(stripped):
            self.at_start = False  # text came first: no bare call from now on
        at = text.find(start) if start else -1
        if at >= 0:
            self._text(text[:at].rstrip(WHITESPACE))
            return self._open(start, text[at + len(start):])
        held = 0 if final else next((n for n in range(len(start or "") - 1, 0, -1) if text.endswith(start[:n])), 0)
        sendable = text[:len(text) - held].rstrip(WHITESPACE)  # a start marker may be forming, whitespace before it too
        self._text(sendable)
        self.pending = "" if final else text[len(sendable):]
        return False

    def _text(self, text: str) -> None:
        if text:
            self.out.append(("text", text))

    def _in_call(self) -> bool:
        used = self.call.feed(self.pending)
        if used:
            self.out.append(("body", self.pending[:used]))
        self.pending = self.pending[used:]
        if not self.call.done:
            return False
        self.out.append(("end", ""))
        self.after = "call" if self.call.text else None  # no object after the opening: the rest is text again
        self.in_array = self.in_array and self.after is not None
        self.call = None
        return True

    def _after_call(self) -> bool:
        """After a call's JSON: its end marker, a separator to the next call, or text (whitespace dropped)."""
        rest = self.pending = self.pending.lstrip(WHITESPACE)
        end = self.fmt.end
        if not rest:
            return False
        if self.after == "call" and end and end.startswith(rest[:len(end)]):
            if len(rest) < len(end):
                return False  # the end marker may still be arriving
            self.after, self.pending = "end", rest[len(end):]
            return True
        if self.after == "call" and self.in_array and rest[0] == "]":
            self.in_array, self.after, self.pending = False, "end", rest[1:]
            return True
        separator = "," if self.in_array else self.fmt.separator if self.fmt.bare_json else None
        if self.after == "call" and rest[0] == separator:
            return self._open(separator, rest[1:])
        self.after = None
        return True
