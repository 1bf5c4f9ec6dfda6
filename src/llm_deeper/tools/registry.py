"""Typed Python functions become OpenAI tools: `@tool`, `Tool`, `ToolRegistry`.

The JSON schema of a tool's parameters comes from the function's type hints
(str, int, float, bool, Enum, Literal, list, dict, Optional, nested pydantic
models) and the per-parameter descriptions from its docstring (Google style
`Args:` or Sphinx `:param x:`). The first docstring paragraph is the tool's
description. Schemas are self-contained (no `$ref`), because the prompt shows
them to the model and the grammar compiler turns them into constraints.

    @tool
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
        '''Current weather for a city.

        Args:
            city: City name, e.g. "Paris".
            unit: Temperature unit.
        '''
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ..errors import UserError

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what OpenAI accepts as a function name


class ToolDefinitionError(UserError):
    """A function that cannot become a tool (unsupported type hint, bad name)."""


class ToolError(Exception):
    """Raised by a tool for a bad request (unknown city, division by zero).

    The executor sends the message back to the model as the tool's result, so
    the model can correct itself; it never reaches the user as a traceback.
    """


# ── docstrings ────────────────────────────────────────────────────────────────

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:\s*$")
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^\s*:param\s+(?:[\w\[\], ]+\s+)?(\w+)\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google- or Sphinx-style docstring."""
    summary: list[str] = []
    params: dict[str, str] = {}
    section = None  # None while in the summary, then the current section's name
    current = None  # the parameter whose description is being read
    arg_indent = None  # indent of the parameter lines in an Args section
    for line in inspect.cleandoc(doc or "").splitlines():
        header = _SECTION.match(line)
        sphinx = _SPHINX.match(line)
        if header:
            section, current, arg_indent = header.group(1).lower(), None, None
        elif sphinx:
            section, current = "sphinx", sphinx.group(1)
            params[current] = sphinx.group(2).strip()
        elif section is None:
            summary.append(line)
        elif section in ("args", "arguments", "parameters"):
            arg = _ARG_LINE.match(line)
            indent = len(line) - len(line.lstrip())
            if arg and (arg_indent is None or indent <= arg_indent):
                current, arg_indent = arg.group(1), indent
                params[current] = arg.group(2).strip()
            elif current and line.strip():  # continuation of the previous parameter
                params[current] = (params[current] + " " + line.strip()).strip()
        elif section == "sphinx" and current and line.strip() and not line.lstrip().startswith(":"):
            params[current] = (params[current] + " " + line.strip()).strip()
    description = " ".join(" ".join(summary).split())
    return description, params


# ── type hints → JSON schema ──────────────────────────────────────────────────

def _is_pydantic_model(tp) -> bool:
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return False
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _inline_refs(schema, defs: dict, seen: tuple = ()):
    """Replace `$ref` by the definition it points to (schemas stay self-contained)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                raise ToolDefinitionError(f"recursive model {name} cannot become a tool schema: flatten it")
            target = _inline_refs(defs[name], defs, seen + (name,))
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            return {**target, **_inline_refs(extra, defs, seen)}
        out = {}
        for key, value in schema.items():
            if key == "$defs" or (key == "title" and isinstance(value, str)):
                continue  # pydantic's titles only repeat the names; they cost prompt tokens
            if key == "properties" and isinstance(value, dict):  # keys here are field names, keep them all
                out[key] = {name: _inline_refs(sub, defs, seen) for name, sub in value.items()}
            else:
                out[key] = _inline_refs(value, defs, seen)
        return out
    if isinstance(schema, list):
        return [_inline_refs(v, defs, seen) for v in schema]
    return schema


def _json_type_of(values: Iterable) -> dict:
    kinds = {type(v) for v in values}
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if len(kinds) == 1 and next(iter(kinds)) in names:
        return {"type": names[next(iter(kinds))]}
    return {}


def schema_for(tp) -> dict:
    """The JSON schema of one type hint."""
    if tp is inspect.Parameter.empty or tp is Any:
        raise ToolDefinitionError("every tool parameter needs a type hint (str, int, float, bool, Enum, Literal, list, Optional, a pydantic model)")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        # Annotated[str, "description"] and/or Annotated[str, {"maxLength": 40, "pattern": ...}]:
        # tighter schemas also make tighter grammars (a string that must end, a time that must be HH:MM).
        base = schema_for(args[0])
        for extra in args[1:]:
            if isinstance(extra, str):
                base = {**base, "description": extra}
            elif isinstance(extra, dict):
                base = {**base, **extra}
        return base
    if tp is str:
        return {"type": "string"}
    if tp is bool:  # before int: bool is a subclass of int
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [member.value for member in tp]
        return {**_json_type_of(values), "enum": values}
    if origin is typing.Literal:
        return {**_json_type_of(args), "enum": list(args)}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            args = args[:1]
        if origin is tuple and len(args) > 1:
            items = [schema_for(a) for a in args]
            return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
        if not args:
            raise ToolDefinitionError(f"give the item type of {tp} (e.g. list[str])")
        return {"type": "array", "items": schema_for(args[0])}
    if origin is dict or tp is dict:
        if not args or args[0] is not str:
            raise ToolDefinitionError(f"{tp}: only dict[str, X] can become a JSON object")
        return {"type": "object", "additionalProperties": schema_for(args[1])}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            inner = schema_for(options[0])
            return {"anyOf": [inner, {"type": "null"}]} if len(args) > len(options) else inner
        schemas = [schema_for(a) for a in options]
        if len(args) > len(options):
            schemas.append({"type": "null"})
        return {"anyOf": schemas}
    if _is_pydantic_model(tp):
        raw = tp.model_json_schema()
        return _inline_refs(raw, raw.get("$defs", {}))
    raise ToolDefinitionError(f"type {tp!r} is not supported in a tool signature: use str, int, float, bool, an Enum, Literal, list, dict[str, X], Optional or a pydantic model")


def _optional_inner(tp):
    """X for Optional[X] (with a None default the parameter is simply optional)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1 and len(typing.get_args(tp)) == 2:
            return options[0]
    return tp


def _default_json(value):
    if isinstance(value, enum.Enum):
        return value.value
    if _is_pydantic_model(type(value)):
        return value.model_dump(mode="json")
    return value


# ── Tool and the decorator ────────────────────────────────────────────────────

@dataclass
class Tool:
    """A callable tool: name, description, JSON-schema parameters and the function."""

    name: str  # what the model writes in a call
    description: str  # what the model reads to decide when to call it
    parameters: dict  # JSON schema of the arguments object
    fn: Callable[..., Any] | None = None  # the Python function (None: schema-only tool)
    hints: dict = field(default_factory=dict)  # parameter → type hint, to rebuild enums/models

    @classmethod
    def from_function(cls, fn: Callable, name: str | None = None, description: str | None = None) -> "Tool":
        """Build the tool from the function's signature, type hints and docstring."""
        name = name or fn.__name__
        if not NAME_PATTERN.match(name):
            raise ToolDefinitionError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'")
        summary, docs = parse_docstring(fn.__doc__)
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except NameError as exc:
            raise ToolDefinitionError(f"tool {name}: cannot resolve a type hint ({exc})") from None
        properties: dict[str, dict] = {}
        required: list[str] = []
        kept: dict[str, Any] = {}
        for pname, param in inspect.signature(fn).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ToolDefinitionError(f"tool {name}: *args/**kwargs cannot be described to a model; name each parameter")
            hint = hints.get(pname, inspect.Parameter.empty)
            try:
                prop = schema_for(_optional_inner(hint) if param.default is None else hint)
            except ToolDefinitionError as exc:
                raise ToolDefinitionError(f"tool {name}, parameter {pname}: {exc}") from None
            if pname in docs and "description" not in prop:
                prop = {**prop, "description": docs[pname]}
            if param.default is inspect.Parameter.empty:
                required.append(pname)
            elif param.default is not None:
                prop = {**prop, "default": _default_json(param.default)}
            properties[pname] = prop
            kept[pname] = hint
        parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
        if not required:
            del parameters["required"]
        return cls(name=name, description=description or summary or name, parameters=parameters, fn=fn, hints=kept)

    def schema(self) -> dict:
        """The OpenAI tool definition: {"type": "function", "function": {...}}."""
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    def convert_arguments(self, arguments: dict) -> dict:
        """JSON values → the Python types the function declared (enums, models)."""
        converted = {}
        for key, value in arguments.items():
            hint = _optional_inner(self.hints.get(key, Any))
            if typing.get_origin(hint) is typing.Annotated:
                hint = typing.get_args(hint)[0]
            if value is not None and isinstance(hint, type) and issubclass(hint, enum.Enum):
                value = hint(value)
            elif value is not None and _is_pydantic_model(hint):
                value = hint.model_validate(value)
            converted[key] = value
        return converted

    def __call__(self, **arguments):
        if self.fn is None:
            raise RuntimeError(f"tool {self.name} has a schema but no function to run")
        return self.fn(**self.convert_arguments(arguments))


def tool(fn: Callable | None = None, *, name: str | None = None, description: str | None = None):
    """Decorator: `@tool` or `@tool(name=..., description=...)` turns a function into a `Tool`."""
    if fn is None:
        return lambda f: Tool.from_function(f, name=name, description=description)
    return Tool.from_function(fn)


# ── the registry ──────────────────────────────────────────────────────────────

class ToolRegistry:
    """Named tools, in registration order (the order the prompt lists them)."""

    def __init__(self, tools: Iterable[Tool | Callable] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    def register(self, item: Tool | Callable, name: str | None = None) -> Tool:
        """Add a Tool (or a plain typed function); a duplicate name is an error."""
        entry = item if isinstance(item, Tool) else Tool.from_function(item, name=name)
        if entry.name in self._tools:
            raise ToolDefinitionError(f"a tool named {entry.name!r} is already registered")
        self._tools[entry.name] = entry
        return entry

    def tool(self, fn: Callable | None = None, *, name: str | None = None, description: str | None = None):
        """Decorator that builds a Tool and registers it."""
        def wrap(f):
            return self.register(Tool.from_function(f, name=name, description=description))
        return wrap if fn is None else wrap(fn)

    def get(self, name: str) -> Tool:
        """The tool of that name; a clear error naming the known ones otherwise."""
        if name not in self._tools:
            raise KeyError(f"no tool named {name!r}; known tools: {', '.join(self._tools) or '(none)'}")
        return self._tools[name]

    def subset(self, names: Iterable[str]) -> "ToolRegistry":
        """A registry with only these tools (in the given order)."""
        return ToolRegistry(self.get(n) for n in names)

    def schemas(self) -> list[dict]:
        """OpenAI tool definitions for every tool, ready for `tools=`."""
        return [t.schema() for t in self._tools.values()]

    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)
