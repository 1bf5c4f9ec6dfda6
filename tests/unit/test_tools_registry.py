"""Tool schemas from type hints and docstrings; the built-in tools; request checks."""

from __future__ import annotations

import enum
from typing import Annotated, Literal, Optional

import jsonschema
import pytest
from pydantic import BaseModel, Field

from llm_deeper.errors import UserError
from llm_deeper.tools import Tool, ToolError, ToolRegistry, tool
from llm_deeper.tools.builtin import default_registry
from llm_deeper.tools.calculator import evaluate
from llm_deeper.tools.openai_spec import InvalidToolsError, parse_tool_choice, validate_tools
from llm_deeper.tools.registry import ToolDefinitionError, parse_docstring, schema_for


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    street: str = Field(description="Street and number.")
    zip_code: int


class Person(BaseModel):
    name: str
    address: Address
    tags: list[str] = []


@pytest.mark.parametrize("hint, expected", [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (Color, {"type": "string", "enum": ["red", "green"]}),
    (Level, {"type": "integer", "enum": [1, 2]}),
    (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
    (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}),
    (list[int], {"type": "array", "items": {"type": "integer"}}),
    (list[list[str]], {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
    (tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2}),
    (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    (Annotated[int, "how many"], {"type": "integer", "description": "how many"}),
])
def test_schema_for_each_supported_type(hint, expected):
    assert schema_for(hint) == expected


def test_nested_pydantic_models_are_inlined_without_refs_or_titles():
    schema = schema_for(Person)
    assert "$defs" not in str(schema) and "$ref" not in str(schema) and "title" not in schema
    assert schema["properties"]["address"]["properties"]["street"] == {"description": "Street and number.", "type": "string"}
    assert schema["required"] == ["name", "address"]
    jsonschema.validate({"name": "Ann", "address": {"street": "Main 1", "zip_code": 12345}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "Ann", "address": {"street": "Main 1"}}, schema)


def test_a_model_field_named_title_is_kept():
    class Book(BaseModel):
        title: str
    assert "title" in schema_for(Book)["properties"]


@pytest.mark.parametrize("hint", [object, dict[int, str], list, bytes])
def test_unsupported_types_raise_a_clear_error(hint):
    with pytest.raises(ToolDefinitionError):
        schema_for(hint)


def test_decorator_builds_the_openai_shape_with_docstring_descriptions():
    @tool
    def book_table(restaurant: str, people: int, when: Literal["lunch", "dinner"] = "dinner",
                   color: Color = Color.RED, note: Optional[str] = None, guest: Person | None = None) -> str:
        """Book a table at a restaurant.

        Longer explanation on a second line.

        Args:
            restaurant: Name of the restaurant,
                as on its sign.
            people (int): How many guests.
            when: Which service.
        Returns:
            A confirmation.
        """
        return f"{restaurant}:{people}:{when}:{color.value}:{note}:{guest.name if guest else None}"

    schema = book_table.schema()
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == "book_table"
    assert function["description"] == "Book a table at a restaurant. Longer explanation on a second line."
    params = function["parameters"]
    assert params["required"] == ["restaurant", "people"]
    assert params["additionalProperties"] is False
    assert params["properties"]["restaurant"]["description"] == "Name of the restaurant, as on its sign."
    assert params["properties"]["people"] == {"type": "integer", "description": "How many guests."}
    assert params["properties"]["when"]["default"] == "dinner"
    assert params["properties"]["color"]["default"] == "red"
    assert params["properties"]["note"] == {"type": "string"}  # Optional with None default: simply optional
    jsonschema.Draft202012Validator.check_schema(params)
    # Calling converts JSON values back to the declared types (enum, nested model).
    guest = {"name": "Ann", "address": {"street": "Main 1", "zip_code": 1}}
    assert book_table(restaurant="Chez Léon", people=2, color="green", guest=guest) == "Chez Léon:2:dinner:green:None:Ann"


def test_sphinx_docstrings_and_named_decorator():
    @tool(name="add-numbers", description="Adds.")
    def add(a: int, b: int = 1) -> int:
        """:param a: first
        :param b: second
        """
        return a + b
    assert add.name == "add-numbers" and add.description == "Adds."
    assert add.parameters["properties"]["a"]["description"] == "first"
    assert add(a=2) == 3
    assert parse_docstring(None) == ("", {})


def test_bad_definitions_are_refused():
    def no_hint(x):
        """Nothing."""
    with pytest.raises(ToolDefinitionError, match="type hint"):
        Tool.from_function(no_hint)

    def star(*args: int):
        """Nothing."""
    with pytest.raises(ToolDefinitionError, match="args"):
        Tool.from_function(star)
    with pytest.raises(ToolDefinitionError, match="name"):
        Tool.from_function(lambda: None, name="has space")
    registry = ToolRegistry()

    @registry.tool
    def ping() -> str:
        """Ping."""
        return "pong"
    with pytest.raises(ToolDefinitionError, match="already"):
        registry.register(ping)
    with pytest.raises(KeyError, match="known tools: ping"):
        registry.get("pong")
    assert registry.get("ping")() == "pong" and "ping" in registry and len(registry) == 1


def test_default_registry_schemas_are_valid_and_tools_deterministic():
    from datetime import datetime, timezone

    registry = default_registry(now=datetime(2026, 11, 28, 12, 30, tzinfo=timezone.utc))
    assert len(registry) >= 10
    for item in registry:
        jsonschema.Draft202012Validator.check_schema(item.parameters)
    assert validate_tools(registry.schemas())  # the server's check accepts them
    assert registry.get("get_current_time").parameters["properties"] == {}
    assert registry.get("get_current_time")() == {"utc": "2026-11-28T12:30:00Z", "weekday": "Saturday"}
    weather = registry.get("get_weather")(city="paris")
    assert weather["city"] == "Paris" and weather == registry.get("get_weather")(city="Paris")
    assert registry.get("get_weather")(city="Paris", unit="fahrenheit")["temperature"] == pytest.approx(11 * 9 / 5 + 32)
    assert registry.get("convert_units")(value=1, from_unit="mile", to_unit="kilometer")["result"] == pytest.approx(1.6093)
    assert registry.get("convert_units")(value=212, from_unit="fahrenheit", to_unit="celsius")["result"] == pytest.approx(100)
    assert registry.get("convert_currency")(amount=100, from_currency="USD", to_currency="EUR")["result"] == 92.0
    converted = registry.get("convert_time")(time="09:00", from_timezone="Europe/Paris", to_timezone="Asia/Tokyo", date="2026-07-01")
    assert converted["to"] == "2026-07-01 16:00 Asia/Tokyo"  # summer: Paris UTC+2, Tokyo UTC+9
    assert registry.get("search_notes")(query="dentist")["results"][0]["title"] == "Dentist"
    assert "short time" in registry.get("define_word")(word="Ephemeral")["definition"]
    assert registry.get("city_distance")(from_city="London", to_city="Paris")["distance"] == pytest.approx(343.6, abs=1)
    event = {"title": "Sync", "date": "2026-12-01", "start_time": "10:00", "attendees": [{"name": "Dana"}]}
    first, second = registry.get("create_event")(event=event), registry.get("create_event")(event=event)
    assert first == second and first["event_id"].startswith("evt_")
    for name, args in [("get_weather", {"city": "Atlantis"}), ("convert_units", {"value": 1, "from_unit": "meter", "to_unit": "kilogram"}),
                       ("define_word", {"word": "zzz"}), ("convert_time", {"time": "25:00", "from_timezone": "UTC", "to_timezone": "UTC"})]:
        with pytest.raises(ToolError):
            registry.get(name)(**args)


@pytest.mark.parametrize("expression, value", [("1 + 2 * 3", 7), ("(3 + 4) * 12.5", 87.5), ("2 ** 10", 1024), ("-7 // 2", -4),
                                               ("sqrt(16) + abs(-2)", 6), ("2^3", 8), ("10 / 4", 2.5), ("max(1, 5, 3)", 5)])
def test_calculator_evaluates(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize("expression", ["__import__('os').system('x')", "open('f')", "1 +", "", "9 ** 9 ** 9", "1 / 0",
                                        "[1, 2]", "x + 1", "(lambda: 1)()", "10 ** 400 * 1.0", "'a' * 3"])
def test_calculator_refuses_anything_but_arithmetic(expression):
    with pytest.raises(ToolError):
        evaluate(expression)


def test_validate_tools_and_tool_choice():
    tools = [{"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}},
             {"type": "function", "function": {"name": "b"}}]
    normalised = validate_tools(tools)
    assert normalised[1]["function"]["parameters"] == {"type": "object", "properties": {}}
    for bad, message in [
        ([{"type": "function", "function": {"name": "bad name"}}], "name"),
        ([{"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": "integr"}}}}}], "valid JSON schema"),
        ([{"type": "function", "function": {"name": "a", "parameters": {"type": "string"}}}], "object"),
        ([tools[0], tools[0]], "two tools"),
        ([{"type": "retrieval"}], "must be"),
    ]:
        with pytest.raises(InvalidToolsError, match=message):
            validate_tools(bad)
    assert issubclass(InvalidToolsError, UserError)
    assert parse_tool_choice(None, normalised).mode == "auto"
    assert parse_tool_choice(None, []).mode == "none"
    assert parse_tool_choice("required", normalised).names == ("a", "b")
    named = parse_tool_choice({"type": "function", "function": {"name": "b"}}, normalised, parallel_tool_calls=False)
    assert (named.mode, named.names, named.parallel) == ("required", ("b",), False)
    with pytest.raises(InvalidToolsError, match="not in `tools`"):
        parse_tool_choice({"type": "function", "function": {"name": "zzz"}}, normalised)
    with pytest.raises(InvalidToolsError):
        parse_tool_choice("sometimes", normalised)
    with pytest.raises(InvalidToolsError, match="non-empty"):
        parse_tool_choice("required", [])
