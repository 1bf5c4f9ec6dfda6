"""Grammar-constrained decoding with xgrammar, one matcher per request.

At each decode step a request with a constraint gets a token bitmask (which
tokens keep the output inside the grammar), its logits outside the mask are
set to -inf, and the chosen token advances its matcher. The batch is shared:
constrained and free requests decode side by side.

Grammars come from a JSON schema (`response_format: json_schema`), plain JSON
(`json_object`), or an already-built xgrammar grammar / structural tag (the
tool-call constraints of `llm_deeper.tools.constrain`). JSON is compiled
compact (no free whitespace): pretty-printed JSON only costs tokens.
Compiled grammars are cached per (tokenizer, schema).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ..errors import UserError

# Tool-call arguments: the longest string a call may write when its schema sets no
# maxLength. Measured: BFCL v4's possible answers (4,970 strings in simple_python,
# multiple, parallel, parallel_multiple) are at most 102 characters (99th percentile
# 26), the project's tool data at most 40; and the default model, made to call
# set_timer(minutes, label?) for "Remind me in 45 minutes.", wrote the label
# "... 10 minutes is 10 minutes. 10 minutes is ..." until max_tokens (issue 16).
# 128 characters (~30 tokens) lets every real answer through and makes such a
# loop close its string and its call within ~60 tokens.
STRING_MAX_LENGTH = 128
# Likewise for arrays without maxItems: BFCL's longest answer list has 8 items, ours 1;
# a model repeating the same item cannot go past this many.
ARRAY_MAX_ITEMS = 32


def bounded_schema(schema, max_length: int = STRING_MAX_LENGTH, max_items: int = ARRAY_MAX_ITEMS):
    """A copy of a JSON schema whose free strings and arrays have an upper bound.

    Strings with their own maxLength, enum, const, pattern or format keep them
    (those already end); every other string gets `maxLength: max_length`, every
    array without maxItems gets `maxItems: max_items`. Used for tool-call
    arguments (values copied from the user's words), not for `response_format`,
    whose strings may rightly be long prose.
    """
    if isinstance(schema, list):
        return [bounded_schema(item, max_length, max_items) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("enum", "const", "default", "examples", "required"):
            out[key] = value  # values, not schemas
        elif key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
            out[key] = {name: bounded_schema(sub, max_length, max_items) for name, sub in value.items()} if isinstance(value, dict) else value
        else:
            out[key] = bounded_schema(value, max_length, max_items)
    types = out.get("type")
    types = set(types) if isinstance(types, list) else {types}
    if "string" in types and not ({"maxLength", "enum", "const", "pattern", "format"} & set(out)):
        out["maxLength"] = max(max_length, int(out.get("minLength", 0)))
    if "array" in types and "maxItems" not in out:
        out["maxItems"] = max(max_items, int(out.get("minItems", 0)))
    return out


# Calls in one reply under tool_choice "required" with parallel calls: BFCL v4's
# parallel answers have at most 8; the default model, allowed any number, went
# set_timer, send_email, set_timer, ... until max_tokens (issue 16).
MAX_CALLS = 8


def bounded_calls(structural_tag: dict, max_calls: int = MAX_CALLS) -> dict:
    """A tool-call structural tag whose "one or more calls" (tags_with_separator) allows at most `max_calls`.

    Other formats (one call, or "auto"'s triggered tags) are returned as they are.
    """
    fmt = structural_tag.get("format", {})
    if fmt.get("type") != "tags_with_separator" or fmt.get("stop_after_first"):
        return structural_tag
    one = {"type": "or", "elements": fmt["tags"]}
    more = {"type": "sequence", "elements": [{"type": "const_string", "value": fmt["separator"]}, one]}
    rest = {"type": "repeat", "min": 0, "max": max_calls - 1, "content": more}
    first = one if fmt.get("at_least_one") else {"type": "optional", "content": one}
    return {**structural_tag, "format": {"type": "sequence", "elements": [first, rest]}}


_COMPILERS: dict[int, "GrammarCache"] = {}
_LOCK = threading.Lock()


class GrammarCache:
    """Compiles grammars for one tokenizer and remembers them."""

    def __init__(self, tokenizer, vocab_size: int):
        import xgrammar as xgr

        self.vocab_size = vocab_size
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1)
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()

    def json_schema(self, schema: dict | str):
        """A compiled grammar for JSON matching `schema` (compact separators)."""
        import xgrammar as xgr

        text = schema if isinstance(schema, str) else json.dumps(schema, sort_keys=True)
        return self._get("schema:" + text, lambda: self.compiler.compile_json_schema(text, any_whitespace=False, separators=(",", ":"), strict_mode=True), xgr)

    def json_object(self):
        """Any JSON object or value (OpenAI's `json_object` mode)."""
        import xgrammar as xgr

        return self._get("json", self.compiler.compile_builtin_json_grammar, xgr)

    def grammar(self, grammar):
        """An xgrammar `Grammar`, `StructuralTag`, EBNF text or compiled grammar."""
        import xgrammar as xgr

        if isinstance(grammar, xgr.CompiledGrammar):
            return grammar
        if hasattr(grammar, "structural_tag") and hasattr(grammar, "compile"):  # tools.constrain.ToolGrammar
            tag = json.dumps(bounded_calls(grammar.structural_tag), sort_keys=True)
            return self._get("tag:" + tag, lambda: self.compiler.compile_structural_tag(tag), xgr)
        if isinstance(grammar, xgr.Grammar):
            return self._get("grammar:" + str(grammar), lambda: self.compiler.compile_grammar(grammar), xgr)
        if isinstance(grammar, (xgr.StructuralTag, dict)):  # an xgrammar structural tag (object or its JSON dict)
            text = grammar.model_dump_json() if isinstance(grammar, xgr.StructuralTag) else json.dumps(grammar, sort_keys=True)
            return self._get("tag:" + text, lambda: self.compiler.compile_structural_tag(text), xgr)
        if isinstance(grammar, str):
            return self._get("ebnf:" + grammar, lambda: self.compiler.compile_grammar(grammar), xgr)
        raise UserError(f"cannot build a grammar from {type(grammar).__name__}")

    def _get(self, key: str, build, xgr):
        with self._lock:
            if key not in self._compiled:
                try:
                    self._compiled[key] = build()
                except Exception as exc:  # xgrammar raises several types for a schema it cannot compile
                    raise UserError(f"invalid grammar or JSON schema: {str(exc).strip().splitlines()[0]}") from exc
            return self._compiled[key]

    def constraint(self, compiled) -> "Constraint":
        return Constraint(compiled, self.vocab_size)


def grammar_cache(tokenizer, vocab_size: int) -> GrammarCache:
    """The shared cache for this tokenizer (building TokenizerInfo takes a moment)."""
    with _LOCK:
        key = id(tokenizer)
        if key not in _COMPILERS:
            _COMPILERS[key] = GrammarCache(tokenizer, vocab_size)
        return _COMPILERS[key]


class Constraint:
    """The live state of one request's grammar."""

    def __init__(self, compiled, vocab_size: int):
        import xgrammar as xgr

        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.vocab_size = vocab_size

    def mask(self, logits) -> None:
        """Set the logits of tokens the grammar forbids to -inf (in place, one row)."""
        import xgrammar as xgr

        self.matcher.fill_next_token_bitmask(self.bitmask, 0)
        xgr.apply_token_bitmask_inplace(logits.unsqueeze(0), self.bitmask, vocab_size=self.vocab_size)

    def accept(self, token_id: int) -> bool:
        """Advance the grammar; False when the token was not allowed."""
        return bool(self.matcher.accept_token(token_id))

    @property
    def done(self) -> bool:
        """The grammar reached its end (only a stop token may follow)."""
        return bool(self.matcher.is_terminated())
