"""Built-in demo tools: realistic, offline and deterministic.

Every answer comes from code or from fixture files shipped with the package
(`tools/fixtures/`), so the same call always returns the same result — the
synthetic fine-tuning data and the tests rely on it. The one tool that reads
the clock (`get_current_time`) reads a clock you can freeze:
`default_registry(now=datetime(...))`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime, timezone
from enum import Enum
from functools import lru_cache
from importlib import resources
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from .calculator import PATTERN, evaluate
from .calls import compact_json
from .registry import ToolError, ToolRegistry


@lru_cache(maxsize=None)
def fixture_text(name: str) -> str:
    """A file from `llm_deeper/tools/fixtures/` (package data)."""
    return resources.files("llm_deeper.tools").joinpath("fixtures", name).read_text(encoding="utf-8")


def cities() -> dict[str, dict]:
    """Fixture cities: country, coordinates, time zone and today's weather."""
    return json.loads(fixture_text("cities.json"))


def _city(name: str) -> tuple[str, dict]:
    table = cities()
    key = {k.lower(): k for k in table}.get(name.strip().lower().split(",")[0].strip())
    if key is None:
        raise ToolError(f"unknown city {name!r}; known cities: {', '.join(table)}")
    return key, table[key]


# Bounded strings: a grammar built from these schemas cannot let a small model
# ramble inside a string forever, and a time or date must look like one.
CityName = Annotated[str, {"minLength": 1, "maxLength": 40}]
ShortText = Annotated[str, {"minLength": 1, "maxLength": 80}]
ClockTime = Annotated[str, {"pattern": r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"}]
IsoDate = Annotated[str, {"pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}]
# The calculator's own form (calculator.PATTERN): what the grammar lets a model write, the evaluator reads.
# No maxLength beside it: xgrammar ignores one next to a pattern (and warns); the evaluator bounds the length.
Expression = Annotated[str, {"pattern": PATTERN}]


# ── units ─────────────────────────────────────────────────────────────────────

Unit = Literal[
    "meter", "kilometer", "centimeter", "millimeter", "mile", "yard", "foot", "inch",
    "kilogram", "gram", "pound", "ounce",
    "liter", "milliliter", "gallon", "cup",
    "celsius", "fahrenheit", "kelvin",
    "kilometers_per_hour", "miles_per_hour", "meters_per_second",
]
# Each unit: (quantity, factor to the base unit of that quantity).
_UNITS: dict[str, tuple[str, float]] = {
    "meter": ("length", 1.0), "kilometer": ("length", 1000.0), "centimeter": ("length", 0.01),
    "millimeter": ("length", 0.001), "mile": ("length", 1609.344), "yard": ("length", 0.9144),
    "foot": ("length", 0.3048), "inch": ("length", 0.0254),
    "kilogram": ("mass", 1.0), "gram": ("mass", 0.001), "pound": ("mass", 0.45359237), "ounce": ("mass", 0.028349523125),
    "liter": ("volume", 1.0), "milliliter": ("volume", 0.001), "gallon": ("volume", 3.785411784), "cup": ("volume", 0.2365882365),
    "kilometers_per_hour": ("speed", 1 / 3.6), "miles_per_hour": ("speed", 0.44704), "meters_per_second": ("speed", 1.0),
    "celsius": ("temperature", 0.0), "fahrenheit": ("temperature", 0.0), "kelvin": ("temperature", 0.0),
}


def _to_celsius(value: float, unit: str) -> float:
    return {"celsius": value, "fahrenheit": (value - 32) * 5 / 9, "kelvin": value - 273.15}[unit]


def _from_celsius(value: float, unit: str) -> float:
    return {"celsius": value, "fahrenheit": value * 9 / 5 + 32, "kelvin": value + 273.15}[unit]


def convert_units(value: float, from_unit: Unit, to_unit: Unit) -> dict:
    """Convert a quantity between units of length, mass, volume, speed or temperature.

    Args:
        value: The amount to convert.
        from_unit: The unit of the amount.
        to_unit: The unit wanted.
    """
    quantity_from, factor_from = _UNITS[from_unit]
    quantity_to, factor_to = _UNITS[to_unit]
    if quantity_from != quantity_to:
        raise ToolError(f"cannot convert {quantity_from} ({from_unit}) to {quantity_to} ({to_unit})")
    if quantity_from == "temperature":
        result = _from_celsius(_to_celsius(value, from_unit), to_unit)
    else:
        result = value * factor_from / factor_to
    return {"value": value, "from_unit": from_unit, "to_unit": to_unit, "result": round(result, 4)}


# ── currency ──────────────────────────────────────────────────────────────────

class Currency(str, Enum):
    """Currencies with a fixed demo rate."""

    USD = "USD"
    EUR = "EUR"
    GBP = "GBP"
    JPY = "JPY"
    CHF = "CHF"
    CAD = "CAD"
    AUD = "AUD"
    CNY = "CNY"
    INR = "INR"


# Units of each currency per 1 USD (fixed demo rates, not live data).
USD_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0, "CHF": 0.88, "CAD": 1.36, "AUD": 1.52, "CNY": 7.2, "INR": 83.0}


def convert_currency(amount: float, from_currency: Currency, to_currency: Currency) -> dict:
    """Convert money between currencies at fixed demo exchange rates.

    Args:
        amount: The amount of money to convert.
        from_currency: Currency code of the amount.
        to_currency: Currency code wanted.
    """
    source, target = Currency(from_currency).value, Currency(to_currency).value
    result = amount / USD_RATES[source] * USD_RATES[target]
    return {"amount": amount, "from": source, "to": target, "result": round(result, 2), "rate": round(USD_RATES[target] / USD_RATES[source], 6)}


# ── weather, distance, time ───────────────────────────────────────────────────

def get_weather(city: CityName, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Current weather for a city: condition, temperature, humidity and wind.

    Args:
        city: City name, e.g. "Paris" or "Tokyo".
        unit: Temperature unit.
    """
    name, info = _city(city)
    weather = info["weather"]
    temperature = weather["temperature_c"] if unit == "celsius" else round(weather["temperature_c"] * 9 / 5 + 32, 1)
    return {"city": name, "condition": weather["condition"], "temperature": temperature, "unit": unit,
            "humidity_percent": weather["humidity"], "wind_kmh": weather["wind_kmh"]}


def city_distance(from_city: CityName, to_city: CityName, unit: Literal["km", "miles"] = "km") -> dict:
    """Great-circle distance between two cities.

    Args:
        from_city: Starting city, e.g. "London".
        to_city: Destination city, e.g. "New York".
        unit: Distance unit.
    """
    (a_name, a), (b_name, b) = _city(from_city), _city(to_city)
    lat1, lon1, lat2, lon2 = map(math.radians, (a["lat"], a["lon"], b["lat"], b["lon"]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    km = 2 * 6371.0 * math.asin(math.sqrt(h))
    distance = km if unit == "km" else km / 1.609344
    return {"from": a_name, "to": b_name, "distance": round(distance, 1), "unit": unit}


def _zone(name: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name.strip().upper() in ("UTC", "GMT", "Z"):
        return "UTC", timezone.utc
    try:
        return name, ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        pass
    try:
        city, info = _city(name)
    except ToolError:
        raise ToolError(f"unknown time zone {name!r}: use an IANA name like 'Europe/Paris' or a known city") from None
    return info["timezone"], ZoneInfo(info["timezone"])


def convert_time(time: ClockTime, from_timezone: ShortText, to_timezone: ShortText, date: IsoDate = "2026-01-15") -> dict:
    """Convert a clock time from one time zone to another.

    Args:
        time: Time of day as HH:MM (24-hour clock).
        from_timezone: IANA time zone or city of the given time, e.g. "Europe/Paris" or "Tokyo".
        to_timezone: IANA time zone or city wanted, e.g. "America/New_York".
        date: Calendar date as YYYY-MM-DD (daylight saving time depends on it).
    """
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", time)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ToolError(f"time {time!r} must be HH:MM on a 24-hour clock, e.g. 14:30")
    try:
        day = datetime.strptime(date, "%Y-%m-%d")
    except ValueError:
        raise ToolError(f"date {date!r} must be YYYY-MM-DD") from None
    source_name, source = _zone(from_timezone)
    target_name, target = _zone(to_timezone)
    start = day.replace(hour=int(match.group(1)), minute=int(match.group(2)), tzinfo=source)
    end = start.astimezone(target)
    return {"from": f"{start:%Y-%m-%d %H:%M} {source_name}", "to": f"{end:%Y-%m-%d %H:%M} {target_name}",
            "utc_offset_hours": (end.utcoffset() - start.utcoffset()).total_seconds() / 3600}


# ── text lookups ──────────────────────────────────────────────────────────────

def notes() -> list[dict]:
    """The fixture notes file as [{"title", "text"}] (one note per `# ` heading)."""
    out = []
    for block in re.split(r"^# ", fixture_text("notes.md"), flags=re.M):
        if block.strip():
            title, _, body = block.partition("\n")
            out.append({"title": title.strip(), "text": " ".join(body.split())})
    return out


def search_notes(query: ShortText, limit: Annotated[int, {"minimum": 1, "maximum": 10}] = 3) -> dict:
    """Search the user's personal notes; returns the best-matching notes.

    Args:
        query: Words to look for, e.g. "dentist appointment".
        limit: Maximum number of notes to return (1-10).
    """
    words = [w for w in re.findall(r"\w+", query.lower()) if len(w) > 2] or re.findall(r"\w+", query.lower())
    if not words:
        raise ToolError("the query has no words to search for")
    limit = max(1, min(10, limit))
    scored = []
    for index, note in enumerate(notes()):
        haystack = (note["title"] + " " + note["text"]).lower()
        title = note["title"].lower()
        score = sum(haystack.count(w) + 2 * title.count(w) for w in words)
        if score:
            scored.append((-score, index, note))
    hits = [note for _, _, note in sorted(scored)[:limit]]
    return {"query": query, "results": hits, "count": len(hits)}


def define_word(word: Annotated[str, {"minLength": 1, "maxLength": 40}]) -> dict:
    """Dictionary definition of an English word.

    Args:
        word: The word to define, e.g. "ephemeral".
    """
    table = json.loads(fixture_text("dictionary.json"))
    key = word.strip().lower()
    if key not in table:
        raise ToolError(f"no definition for {word!r}; the dictionary knows: {', '.join(table)}")
    return {"word": key, "definition": table[key]}


def calculator(expression: Expression) -> dict:
    """Evaluate an arithmetic expression exactly (+ - * / // % **, parentheses, sqrt, log, sin...).

    Args:
        expression: The expression, e.g. "(3 + 4) * 12.5" or "sqrt(2) ** 2".
    """
    return {"expression": expression, "result": evaluate(expression)}


# ── a tool with a nested model ────────────────────────────────────────────────

class Attendee(BaseModel):
    """Someone invited to an event."""

    name: str = Field(description="Full name.", min_length=1, max_length=60)
    email: str | None = Field(default=None, description="Email address, if known.", max_length=40)


class CalendarEvent(BaseModel):
    """An event to put in the calendar."""

    title: str = Field(description="Short title of the event.", min_length=1, max_length=80)
    date: str = Field(description="Date as YYYY-MM-DD.", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    start_time: str = Field(description="Start time as HH:MM (24-hour clock).", pattern=r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$")
    duration_minutes: int = Field(default=60, description="Length in minutes.", ge=1, le=1440)
    attendees: list[Attendee] = Field(default_factory=list, description="People invited.", max_length=4)


def create_event(event: CalendarEvent) -> dict:
    """Add an event to the user's calendar and return its confirmation.

    Args:
        event: The event to create.
    """
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", event.date):
        raise ToolError(f"date {event.date!r} must be YYYY-MM-DD")
    if not re.fullmatch(r"\d{1,2}:\d{2}", event.start_time):
        raise ToolError(f"start_time {event.start_time!r} must be HH:MM")
    if event.duration_minutes <= 0:
        raise ToolError("duration_minutes must be positive")
    payload = event.model_dump(mode="json")
    # The id is a hash of the event, so the same request always gets the same id.
    event_id = "evt_" + hashlib.sha1(compact_json(payload).encode()).hexdigest()[:10]
    return {"status": "created", "event_id": event_id, **payload}


# ── the registry ──────────────────────────────────────────────────────────────

def default_registry(now: datetime | None = None) -> ToolRegistry:
    """The built-in demo tools; `now` freezes `get_current_time` (deterministic data)."""
    registry = ToolRegistry()

    def get_current_time() -> dict:
        """Current date and time in UTC (ISO 8601)."""
        moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        return {"utc": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "weekday": moment.strftime("%A")}

    for fn in (get_weather, calculator, convert_units, convert_currency, convert_time, get_current_time,
               search_notes, define_word, city_distance, create_event):
        registry.register(fn)
    return registry
