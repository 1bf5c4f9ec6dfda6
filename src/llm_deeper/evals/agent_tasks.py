"""Held-out agent tasks: a request, the tools offered, and the value the final answer must contain.

The tasks come from the tool-data generator's held-out pools (`data/toolcalls.py`):
test phrasings and test values only, so no request repeats a training
sentence or argument. The built-in tools are deterministic, so the value a
right answer must contain is known before the model runs:

- one step: a scenario of the generator whose result is one crisp value
  (a calculator result, a conversion, a distance, a temperature, a clock time);
- two steps: the second call needs the first call's result (a distance, then
  arithmetic on it; a temperature, then a unit conversion; a currency
  conversion, then a split). These phrasings exist only here: the training
  mix has no chained calls in one user turn.

`contains_value` reads numbers as a person would: "391", "391.0" and "391.00"
all say 391, "1,234.5" is 1234.5, and a value rounded to the digits shown
("18.63" for 18.6279...) counts if it stays within 1% (or shows two or more
decimals), so "12" cannot stand for 12.49.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

FROZEN_NOW = datetime(2026, 1, 15, 9, 30, tzinfo=timezone.utc)  # the generator's clock: the same tasks every time
ONE_STEP_TOOLS = ("calculator", "convert_units", "convert_currency", "city_distance", "get_weather", "convert_time")


@dataclass
class AgentTask:
    """One held-out task."""

    id: str  # stable name: kind and index
    kind: str  # the scenario's tool (one step) or the chain's name (two steps)
    steps: int  # tool calls the task needs, in order
    request: str  # what the user asks
    tools: list[str]  # tool names offered: the needed ones plus distractors, shuffled
    expected_calls: list[dict]  # [{"name", "arguments"}] of a right solution, in order
    number: float | None = None  # the value the answer must contain, when it is a number
    texts: list[str] = field(default_factory=list)  # otherwise: any of these strings (case-insensitive)

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def value(self) -> str:
        """The expected value, for reports."""
        return _plain(self.number) if self.number is not None else " | ".join(self.texts)


def _plain(number: float) -> str:
    return f"{number:.10g}"


# ── reading values in an answer ───────────────────────────────────────────────

# "1,234.5" (thousands grouped), "-3", "18.63"; a number glued to letters ("H2O") is not one. In a date
# "2026-01-15" the minus follows a digit, so "01" reads as 1, not -1.
NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def numbers_in(text: str) -> list[tuple[float, int]]:
    """Every number written in `text`, as (value, decimals shown)."""
    out = []
    for match in NUMBER.finditer(text):
        token = match.group().replace(",", "")
        decimals = len(token.split(".")[1]) if "." in token else 0
        out.append((float(token), decimals))
    return out


def same_number(shown: float, decimals: int, expected: float) -> bool:
    """Whether `shown` (with `decimals` digits after the point) writes `expected`.

    Equal, or `expected` rounded to the digits shown, provided the rounding
    keeps it within 1% or shows at least two decimals.
    """
    if shown == expected:
        return True
    error = abs(shown - expected)
    if error > 0.5 * 10 ** -decimals + 1e-9:
        return False
    return decimals >= 2 or error <= 0.01 * abs(expected)


def clock_forms(hhmm: str) -> list[str]:
    """'18:30' → ['18:30', '6:30 pm', '6:30pm', '06:30 pm']: the ways an answer may write a time."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    half = "am" if hours < 12 else "pm"
    twelve = hours % 12 or 12
    forms = [f"{hours:02d}:{minutes:02d}", f"{hours}:{minutes:02d}", f"{twelve}:{minutes:02d} {half}", f"{twelve}:{minutes:02d}{half}",
             f"{twelve:02d}:{minutes:02d} {half}"]
    return list(dict.fromkeys(forms))


def contains_value(answer: str, task: AgentTask) -> bool:
    """Whether the final answer states the task's value."""
    if task.number is not None:
        return any(same_number(shown, decimals, task.number) for shown, decimals in numbers_in(answer))
    text = " ".join(answer.lower().replace("p.m.", "pm").replace("a.m.", "am").split())
    # Not inside a longer number: "8:30" must not match the "18:30" of another time.
    return any(re.search(rf"(?<![\d:]){re.escape(form.lower())}(?![\d:])", text) for form in task.texts)


# ── comparing calls ───────────────────────────────────────────────────────────

def _same_json(a, b) -> bool:
    """Parsed-JSON equality where 1 equals 1.0 and strings compare without case or edge spaces."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    return a == b


def same_call(made: dict, expected: dict) -> bool:
    """A made call ({"name", "arguments"}) equals an expected one.

    Calculator expressions compare by their value ("9558.6 * 2" equals
    "2*9558.6"); other arguments as parsed JSON.
    """
    if made.get("name") != expected["name"]:
        return False
    if expected["name"] == "calculator":
        from ..tools.calculator import evaluate

        try:
            return _same_json(evaluate(str(made["arguments"].get("expression", ""))), evaluate(expected["arguments"]["expression"]))
        except Exception:  # noqa: BLE001 - an expression the calculator refuses is simply not the expected one
            return False
    return _same_json(made.get("arguments"), expected["arguments"])


# ── making tasks ──────────────────────────────────────────────────────────────

def _registry():
    from ..tools.builtin import default_registry

    return default_registry(now=FROZEN_NOW)


def _one_step(rng: random.Random, registry, index: int) -> AgentTask:
    from ..data.toolcalls import SCENARIOS, event_arguments

    scenario = rng.choice([s for s in SCENARIOS if s.tool in ONE_STEP_TOOLS])
    phrasing = rng.choice(scenario.test_phrasings)
    values = scenario.draw(rng, "test")
    arguments = event_arguments(values, phrasing) if scenario.arguments is None else scenario.arguments(values)
    result = registry.get(scenario.tool)(**arguments)
    task = AgentTask(f"{scenario.tool}-{index}", scenario.tool, 1, phrasing.format(**values), [], [{"name": scenario.tool, "arguments": arguments}])
    if scenario.tool == "convert_time":
        task.texts = clock_forms(result["to"].split()[1])
    else:
        task.number = float(result["distance" if scenario.tool == "city_distance" else "temperature" if scenario.tool == "get_weather" else "result"])
    return task


def _chain_round_trip(rng, registry):
    from ..data.toolcalls import two_cities

    a, b = two_cities(rng, "test")
    first = {"from_city": a, "to_city": b}
    distance = registry.get("city_distance")(**first)["distance"]
    second = {"expression": f"{distance} * 2"}
    request = f"How many kilometers is a round trip from {a} to {b} and back?"
    return request, [("city_distance", first), ("calculator", second)], distance * 2


def _chain_drive_hours(rng, registry):
    from ..data.toolcalls import number, two_cities

    a, b = two_cities(rng, "test")
    speed = number(rng, "test", 60, 120)
    first = {"from_city": a, "to_city": b}
    distance = registry.get("city_distance")(**first)["distance"]
    second = {"expression": f"{distance} / {speed}"}
    request = f"Flying at {speed} km/h, how many hours would it take to cover the distance from {a} to {b}?"
    return request, [("city_distance", first), ("calculator", second)], registry.get("calculator")(**second)["result"]


def _chain_kelvin(rng, registry):
    from ..data.toolcalls import CITIES, halves

    city = rng.choice(halves(CITIES, "test"))
    first = {"city": city}
    celsius = registry.get("get_weather")(**first)["temperature"]
    second = {"value": celsius, "from_unit": "celsius", "to_unit": "kelvin"}
    request = f"What is the temperature in {city} right now, in kelvin?"
    return request, [("get_weather", first), ("convert_units", second)], registry.get("convert_units")(**second)["result"]


def _chain_split(rng, registry):
    from ..data.toolcalls import CURRENCIES, number

    source, target = rng.sample(CURRENCIES, 2)
    amount, people = number(rng, "test", 20, 2000), rng.choice([3, 5, 7])
    first = {"amount": amount, "from_currency": source, "to_currency": target}
    converted = registry.get("convert_currency")(**first)["result"]
    second = {"expression": f"{converted} / {people}"}
    request = f"I have {amount} {source}. Converted to {target} and split equally among {people} people, how much does each person get?"
    return request, [("convert_currency", first), ("calculator", second)], registry.get("calculator")(**second)["result"]


CHAINS = {"round_trip": _chain_round_trip, "drive_hours": _chain_drive_hours, "kelvin": _chain_kelvin, "split_bill": _chain_split}


def _two_step(rng: random.Random, registry, index: int) -> AgentTask:
    kind = rng.choice(sorted(CHAINS))
    request, calls, value = CHAINS[kind](rng, registry)
    return AgentTask(f"{kind}-{index}", kind, 2, request, [], [{"name": n, "arguments": a} for n, a in calls], number=float(value))


def make_agent_tasks(n: int = 30, seed: int = 0, two_step_share: float = 1 / 3, distractors: int = 2) -> list[AgentTask]:
    """`n` held-out tasks; round(n × two_step_share) of them need two chained calls. Same seed, same tasks."""
    from ..errors import UserError

    if n < 1:
        raise UserError(f"the number of tasks must be at least 1, got {n}")
    if not 0.0 <= two_step_share <= 1.0:
        raise UserError(f"--two-step-share must be between 0 and 1, got {two_step_share}")
    registry = _registry()
    if not 0 <= distractors <= len(registry) - 2:
        raise UserError(f"--distractors must be between 0 and {len(registry) - 2}, got {distractors}")
    rng = random.Random(seed)
    two_step = round(n * two_step_share)
    kinds = [2] * two_step + [1] * (n - two_step)
    rng.shuffle(kinds)
    tasks = []
    for index, steps in enumerate(kinds):
        task = (_two_step if steps == 2 else _one_step)(rng, registry, index)
        needed = list(dict.fromkeys(c["name"] for c in task.expected_calls))
        offered = needed + rng.sample([name for name in registry.names() if name not in needed], distractors)
        rng.shuffle(offered)
        task.tools = offered
        tasks.append(task)
    return tasks
