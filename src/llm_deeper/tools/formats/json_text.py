"""A JSON object read as its raw text arrives, one character at a time.

The scanner uses it to find where a call's object ends without parsing it (a
call may be broken or cut off and its text must still be delimited); the
streaming parser uses its compact text as the argument deltas. Per character,
so any split of the input gives the same result.
"""

from __future__ import annotations

WHITESPACE = " \t\r\n"  # JSON's whitespace: dropped outside strings


class ObjectText:
    """Where one JSON object ends, and the object as compact JSON so far."""

    def __init__(self) -> None:
        self.depth = 0  # { and [ opened and not closed yet
        self.in_string = False
        self.escaped = False  # the previous character was a backslash inside a string
        self.text = ""  # compact JSON: no whitespace outside strings, control characters escaped
        self.done = False  # the object closed, or what came was not an object (then `text` is "")

    def feed(self, raw: str) -> int:
        """Read `raw` up to the object's end; returns how many of its characters were the object's."""
        out, used = [], 0
        for char in raw:
            if self.done or (not self.depth and char not in WHITESPACE and char != "{"):
                self.done = True
                break
            used += 1
            if self.escaped:
                self.escaped = False
            elif self.in_string:
                self.escaped, self.in_string = char == "\\", char != '"'
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
                self.done = not self.depth
            if self.in_string:  # a raw control character would make the JSON invalid for strict readers
                out.append(char if char >= " " else f"\\u{ord(char):04x}")
            elif char not in WHITESPACE:
                out.append(char)
        self.text += "".join(out)
        return used
