"""Checks for what a client sends: `tools` definitions and `tool_choice`.

The server answers 400 with these messages (they are `UserError`s), the agent
and the lessons use the same checks, so a bad schema fails the same way
everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from .registry import NAME_PATTERN


class InvalidToolsError(UserError):
    """A `tools` list or `tool_choice` that cannot be honoured (HTTP 400)."""


def validate_tools(tools: list | None) -> list[dict]:
    """Check OpenAI tool definitions; return them normalised (parameters always an object schema)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidToolsError("`tools` must be a list of {\"type\": \"function\", \"function\": {...}} objects")
    seen: set[str] = set()
    out: list[dict] = []
    for position, item in enumerate(tools):
        where = f"tools[{position}]"
        if not isinstance(item, dict) or item.get("type", "function") != "function" or not isinstance(item.get("function"), dict):
            raise InvalidToolsError(f"{where} must be {{\"type\": \"function\", \"function\": {{\"name\": ..., \"parameters\": ...}}}}")
        function = item["function"]
        name = function.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise InvalidToolsError(f"{where}.function.name must be 1-64 letters, digits, '_' or '-', got {name!r}")
        if name in seen:
            raise InvalidToolsError(f"{where}: two tools are named {name!r}")
        seen.add(name)
        parameters = function.get("parameters")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise InvalidToolsError(f"{where}.function.parameters must be a JSON schema object, got {type(parameters).__name__}")
        try:
            Draft202012Validator.check_schema(parameters)
        except SchemaError as exc:
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path)  # the field, e.g. .properties.a.minLength
            raise InvalidToolsError(f"{where}.function.parameters{path} is not a valid JSON schema: {exc.message}") from None
        check_refs(parameters, f"{where}.function.parameters")
        if parameters.get("type", "object") != "object":
            raise InvalidToolsError(f"{where}.function.parameters must describe an object (\"type\": \"object\"), got type {parameters.get('type')!r}")
        description = function.get("description") or ""
        if not isinstance(description, str):
            raise InvalidToolsError(f"{where}.function.description must be a string")
        normalised = {"name": name, "description": description, "parameters": {"type": "object", **parameters}}
        out.append({"type": "function", "function": normalised})
    return out


def check_refs(schema: dict, where: str) -> None:
    """Every `$ref` must point inside `schema` and never lead back to itself.

    Grammars are built by expanding references, so a reference to nothing or a
    loop (`{"$ref": "#"}`) cannot become one; the server answered such tools
    with a 500 and a reset connection. A depth-first walk over references,
    each definition followed once.
    """
    finished: set[str] = set()

    def resolve(ref) -> object:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise InvalidToolsError(f"{where}: $ref {ref!r} is not supported; only references inside the schema (\"#/$defs/NAME\") are")
        node: object = schema
        for part in ref[1:].split("/")[1:]:  # "#" is the root; "#/$defs/a" walks $defs, then a
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise InvalidToolsError(f"{where}: $ref {ref!r} points to nothing in the schema; define it under \"$defs\" or write the schema inline")
        return node

    def walk(node, active: tuple[str, ...]) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, active)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if ref is not None and (not isinstance(ref, str) or ref not in finished):
            if ref in active:
                raise InvalidToolsError(f"{where}: $ref {ref!r} refers back to itself (a recursive schema); tool arguments need a schema without loops")
            walk(resolve(ref), (*active, ref))
            finished.add(ref)
        for key, value in node.items():
            if key != "$ref":
                walk(value, active)

    try:
        walk(schema, ())
    except RecursionError:
        raise InvalidToolsError(f"{where}: the schema is nested too deeply") from None


@dataclass(frozen=True)
class ToolChoice:
    """What the request allows: never call, let the model decide, or must call."""

    mode: str  # "none" | "auto" | "required" (a named function is "required" with one name)
    names: tuple[str, ...] = ()  # tools the model may call (all of `tools` unless named)
    parallel: bool = True  # several calls in one turn allowed

    @property
    def constrained(self) -> bool:
        """True when the whole output must be tool calls."""
        return self.mode == "required"


def parse_tool_choice(tool_choice, tools: list[dict], parallel_tool_calls: bool | None = True) -> ToolChoice:
    """Normalise OpenAI's `tool_choice` (string or {"type": "function", "function": {"name"}})."""
    names = tuple(t["function"]["name"] for t in tools)
    parallel = True if parallel_tool_calls is None else bool(parallel_tool_calls)
    if tool_choice is None:
        tool_choice = "auto" if tools else "none"
    if isinstance(tool_choice, str):
        if tool_choice not in ("none", "auto", "required"):
            raise InvalidToolsError(f"tool_choice must be 'none', 'auto', 'required' or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}, got {tool_choice!r}")
        if tool_choice != "none" and not tools:
            if tool_choice == "required":
                raise InvalidToolsError("tool_choice 'required' needs a non-empty `tools` list")
            return ToolChoice("none", (), parallel)
        return ToolChoice(tool_choice, names if tool_choice != "none" else (), parallel)
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function") if tool_choice.get("type", "function") == "function" else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise InvalidToolsError("a named tool_choice must look like {\"type\": \"function\", \"function\": {\"name\": \"...\"}}")
        if name not in names:
            raise InvalidToolsError(f"tool_choice names {name!r}, which is not in `tools` ({', '.join(names) or 'empty'})")
        return ToolChoice("required", (name,), parallel)
    raise InvalidToolsError(f"tool_choice has an unsupported type {type(tool_choice).__name__}")
