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
            key = "tag:" + json.dumps(grammar.structural_tag, sort_keys=True)
            return self._get(key, lambda: grammar.compile(self.compiler), xgr)
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
