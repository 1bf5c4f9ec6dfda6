"""`tools` + `tool_choice` → the constraint that makes a model's tool calls valid by construction.

With `tool_choice="required"` the whole reply must be

    <tool_call>{"name":"<one of the tools>","arguments":<JSON valid for that tool>}</tool_call>

(one per line, at most `MAX_CALLS`, when parallel calls are allowed); a named
function gives exactly one call of it (as OpenAI and vLLM do). With `"auto"`
the model writes free text, but the moment it writes `<tool_call>` the rest of
the call is held to the same grammar. `"none"` constrains nothing. The value
is an `inference.constrained.Constraint`, which the engine compiles (xgrammar)
and applies, one matcher per request, for everyone (server, evals, agent,
lessons): `engine.generate(messages, tools=tools, constraint=tool_call_constraint(tools, "required"))`.
"""

from __future__ import annotations

from ..inference.constrained import Constraint
from ..tools.openai_spec import ToolChoice, parse_tool_choice, validate_tools
from ..tools.render import tool_dicts


def tool_call_constraint(tools, tool_choice="required", parallel_tool_calls: bool | None = True) -> Constraint | None:
    """The constraint for `tools` under `tool_choice`; None when nothing is constrained ("none").

    `tools`: OpenAI tool dicts, Tools or a ToolRegistry. `tool_choice`: "auto",
    "required", "none", {"type": "function", "function": {"name": ...}} or a
    `ToolChoice`. Raises a UserError (`InvalidToolsError`) naming the field for
    bad schemas or unknown names.
    """
    definitions = validate_tools(tool_dicts(tools))
    choice = tool_choice if isinstance(tool_choice, ToolChoice) else parse_tool_choice(tool_choice, definitions, parallel_tool_calls)
    if choice.mode == "none":
        return None
    named = isinstance(tool_choice, dict)  # a named function: exactly one call
    position = {d["function"]["name"]: i for i, d in enumerate(definitions)}
    parameters = {name: definitions[position[name]]["function"]["parameters"] for name in choice.names}
    where = {name: f"tools[{position[name]}].function.parameters" for name in choice.names}
    return Constraint.tool_calls(parameters, mode=choice.mode, parallel=choice.parallel and not named, where=where)
