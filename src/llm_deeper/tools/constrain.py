"""Grammars that make a model's tool calls valid by construction (xgrammar).

With `tool_choice="required"` (or a named function) the whole reply must be

    <tool_call>{"name":"<one of the tools>","arguments":<JSON valid for that tool>}</tool_call>

(one per line, several when parallel calls are allowed). With `"auto"` the
model writes free text, but the moment it writes `<tool_call>` the rest of the
call is held to the same grammar (an xgrammar structural tag with a trigger).
All JSON is compact: no optional whitespace, so no tokens are spent on it.

The grammar is exposed three ways so any decoder can use it: the structural
tag (a dict, xgrammar's own format), an `xgrammar.Grammar` (its EBNF text via
`str()`), and a compiled grammar for a tokenizer. The engine applies it, one
matcher per request, for everyone (server, agent, lessons):
`engine.generate(messages, tools=tools, grammar=tool_call_grammar(tools, "required"))`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .openai_spec import ToolChoice, parse_tool_choice, validate_tools
from .render import CALL_END, CALL_SEPARATOR, CALL_START, tool_dicts


def arguments_ebnf(schema: dict, bounded: bool = False) -> str:
    """EBNF (xgrammar dialect) of compact JSON that matches `schema` (free strings and arrays bounded when asked)."""
    import xgrammar as xgr

    from ..inference.constrained import bounded_schema

    schema = bounded_schema(schema) if bounded else schema
    return str(xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":"), strict_mode=True))


def _call_tag(name: str, parameters: dict) -> dict:
    """One tool's call: the fixed opening with its name, its arguments' grammar, the closing."""
    return {
        "type": "tag",
        "begin": CALL_START + '{"name":' + json.dumps(name, ensure_ascii=False) + ',"arguments":',
        "content": {"type": "grammar", "grammar": arguments_ebnf(parameters or {"type": "object", "properties": {}}, bounded=True)},
        "end": "}" + CALL_END,
    }


@dataclass(frozen=True)
class ToolGrammar:
    """The constraint for one request's tool calls."""

    structural_tag: dict  # xgrammar structural tag: {"type": "structural_tag", "format": {...}}
    choice: ToolChoice  # the normalised tool_choice it was built for

    def xgr_structural_tag(self):
        """As an `xgrammar.StructuralTag` object."""
        import xgrammar as xgr

        return xgr.StructuralTag.from_json(self.structural_tag)

    def grammar(self):
        """As an `xgrammar.Grammar` (what `GrammarCompiler.compile_grammar` takes)."""
        import xgrammar as xgr

        return xgr.Grammar.from_structural_tag(json.dumps(self.structural_tag))

    @property
    def ebnf(self) -> str:
        """The grammar as EBNF text."""
        return str(self.grammar())

    def compile(self, compiler):
        """A compiled grammar for the compiler's tokenizer."""
        return compiler.compile_structural_tag(json.dumps(self.structural_tag))


def tool_call_grammar(tools, tool_choice="required", parallel_tool_calls: bool | None = True) -> ToolGrammar | None:
    """The grammar for `tools` under `tool_choice`; None when nothing is constrained ("none").

    `tools`: OpenAI tool dicts, Tools or a ToolRegistry. `tool_choice`: "auto",
    "required", "none", {"type": "function", "function": {"name": ...}} or a
    `ToolChoice`. Raises `InvalidToolsError` for bad schemas or unknown names.
    """
    definitions = validate_tools(tool_dicts(tools))
    choice = tool_choice if isinstance(tool_choice, ToolChoice) else parse_tool_choice(tool_choice, definitions, parallel_tool_calls)
    if choice.mode == "none":
        return None
    by_name = {d["function"]["name"]: d["function"] for d in definitions}
    tags = [_call_tag(name, by_name[name].get("parameters")) for name in choice.names]
    if choice.mode == "required":
        fmt = {"type": "tags_with_separator", "tags": tags, "separator": CALL_SEPARATOR,
               "at_least_one": True, "stop_after_first": not choice.parallel}
    else:  # auto: free text until <tool_call>, then a constrained call
        fmt = {"type": "triggered_tags", "triggers": [CALL_START], "tags": tags,
               "at_least_one": False, "stop_after_first": not choice.parallel}
    return ToolGrammar({"type": "structural_tag", "format": fmt}, choice)


def json_schema_grammar(schema: dict):
    """`response_format: json_schema`: compact JSON matching `schema`, as an xgrammar Grammar."""
    import xgrammar as xgr

    return xgr.Grammar.from_ebnf(arguments_ebnf(schema))


# ── the xgrammar compiler for a tokenizer ─────────────────────────────────────

def vocab_size_of(model, tokenizer) -> int:
    """Rows of the output layer (may exceed len(tokenizer) because of padding)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None:
        return int(head.weight.shape[0])
    return int(getattr(model.config, "vocab_size", len(tokenizer)))


def compiler_for(tokenizer, vocab_size: int):
    """The engine's cached `xgrammar.GrammarCompiler` for this tokenizer (building it takes ~1 s)."""
    from ..inference.constrained import grammar_cache

    return grammar_cache(tokenizer, vocab_size).compiler
