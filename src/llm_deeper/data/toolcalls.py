"""A synthetic tool-calling data set built on the project's own tool registry.

Each conversation: the user asks something a tool answers; the assistant
emits a hermes-style call (`<tool_call>{"name":...,"arguments":{...}}</tool_call>`);
the tool really runs (the built-in tools are offline and deterministic) and
its result comes back as a `role: "tool"` message; the assistant answers in
plain words. Records use the OpenAI message shape plus a `tools` column (the
correct tool and a few distractors, in random order), and the prompt text
comes from `tools.render`, the renderer the server uses, so the model learns
the exact format it will be served with.

The test split is held out twice over: its questions use phrasings and
argument values the training split never contains, so a model can only score
by learning *when* to call *which* tool, not by remembering sentences.
A small share of conversations needs no tool (the assistant just answers),
so the model also learns not to call tools for everything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .sft import ChatExample, write_jsonl

Values = dict  # one draw of a scenario's slots


@dataclass
class Scenario:
    """How to ask for one tool, with train and test pools kept apart."""

    tool: str  # registry name of the tool this scenario needs
    train_phrasings: list[str]  # user templates ({slot} fields) used for the train split
    test_phrasings: list[str]  # templates only the test split uses
    draw: Callable[[random.Random, str], Values]  # (rng, split) → slot values; pools differ by split
    arguments: Callable[[Values], dict]  # slot values → the tool call's arguments
    reply: Callable[[dict], str]  # tool result → the assistant's final answer


def halves(items: list, split: str) -> list:
    """Deterministic disjoint pools: even positions for train, odd for test."""
    return items[0::2] if split == "train" else items[1::2]


CITIES = ["Paris", "London", "Berlin", "Madrid", "Rome", "New York", "San Francisco", "Chicago", "Toronto", "Mexico City",
          "Sao Paulo", "Tokyo", "Beijing", "Mumbai", "Dubai", "Sydney", "Cairo", "Nairobi"]
WORDS = ["attention", "token", "embedding", "gradient", "perplexity", "quantization", "latency", "ephemeral",
         "serendipity", "ubiquitous", "meticulous", "resilient", "algorithm", "photosynthesis", "eclipse"]
NOTE_TOPICS = ["groceries", "dentist", "book list", "Wi-Fi password at the cabin", "training run", "birthday gift ideas",
               "car maintenance", "trip to Tokyo", "lentil soup recipe", "Project Apollo kickoff"]
UNIT_PAIRS = [("kilometer", "mile"), ("mile", "kilometer"), ("pound", "kilogram"), ("kilogram", "pound"), ("celsius", "fahrenheit"),
              ("fahrenheit", "celsius"), ("liter", "gallon"), ("gallon", "liter"), ("foot", "meter"), ("meter", "foot"),
              ("inch", "centimeter"), ("centimeter", "inch"), ("ounce", "gram"), ("gram", "ounce"), ("miles_per_hour", "kilometers_per_hour"),
              ("kilometers_per_hour", "miles_per_hour"), ("cup", "milliliter"), ("yard", "meter")]
UNIT_WORDS = {"miles_per_hour": "miles per hour", "kilometers_per_hour": "kilometers per hour", "celsius": "degrees Celsius",
              "fahrenheit": "degrees Fahrenheit", "foot": "feet", "inch": "inches"}
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR"]
EVENTS = ["team standup", "dentist appointment", "lunch with Maria", "project review", "yoga class", "call with the bank",
          "book club", "1:1 with Sam", "flight check-in", "piano lesson", "budget meeting", "coffee with Alex"]
PEOPLE = ["Maria", "Sam", "Alex", "Priya", "Tom", "Yuki", "Lena", "Omar"]


def unit_word(unit: str, value: float = 2) -> str:
    word = UNIT_WORDS.get(unit, unit.replace("_", " "))
    return word if value == 1 or word.endswith("s") or unit in UNIT_WORDS else word + "s"


def number(rng: random.Random, split: str, low: int, high: int) -> int:
    """Train uses even numbers, test odd ones: argument values never repeat across splits."""
    value = rng.randint(low, high)
    return value - value % 2 + (0 if split == "train" else 1)


def two_cities(rng: random.Random, split: str) -> tuple[str, str]:
    a, b = rng.sample(halves(CITIES, split), 2)
    return a, b


def expression(rng: random.Random, split: str) -> str:
    a, b, c = (number(rng, split, 2, 999) for _ in range(3))
    shapes = ["{a} * {b}", "{a} + {b} * {c}", "({a} + {b}) / {c}", "{a} - {b}", "{a} ** 2", "sqrt({a})"]
    return rng.choice(halves(shapes, split) + ["{a} * {b}"]).format(a=a, b=b, c=c)


SCENARIOS = [
    Scenario(
        "get_weather",
        ["What's the weather like in {city}?", "Is it raining in {city} right now?", "How warm is it in {city} today?",
         "Tell me the current weather for {city}.", "Do I need an umbrella in {city}?", "weather {city}"],
        ["What are the conditions in {city} at the moment?", "Could you check how the weather is in {city}?"],
        lambda rng, split: {"city": rng.choice(halves(CITIES, split))},
        lambda v: {"city": v["city"]},
        lambda r: f"In {r['city']} it is {r['temperature']}°{'C' if r['unit'] == 'celsius' else 'F'} with {r['condition']}, humidity {r['humidity_percent']}% and wind at {r['wind_kmh']} km/h.",
    ),
    Scenario(
        "calculator",
        ["What is {expr}?", "Calculate {expr}.", "Can you compute {expr} for me?", "{expr} = ?", "Please work out {expr}."],
        ["I need the result of {expr}.", "Evaluate {expr}, please."],
        lambda rng, split: {"expr": expression(rng, split)},
        lambda v: {"expression": v["expr"]},
        lambda r: f"{r['expression']} = {r['result']}.",
    ),
    Scenario(
        "convert_units",
        ["How many {to_w} is {value} {from_w}?", "Convert {value} {from_w} to {to_w}.", "What is {value} {from_w} in {to_w}?",
         "{value} {from_w} to {to_w}"],
        ["I have {value} {from_w}; how much is that in {to_w}?", "Express {value} {from_w} in {to_w}, please."],
        lambda rng, split: (lambda pair, value: {"from": pair[0], "to": pair[1], "value": value, "from_w": unit_word(pair[0], value), "to_w": unit_word(pair[1])})(
            rng.choice(halves(UNIT_PAIRS, split)), number(rng, split, 1, 500)),
        lambda v: {"value": v["value"], "from_unit": v["from"], "to_unit": v["to"]},
        lambda r: f"{r['value']} {unit_word(r['from_unit'], r['value'])} is {r['result']} {unit_word(r['to_unit'])}.",
    ),
    Scenario(
        "convert_currency",
        ["Convert {amount} {src} to {dst}.", "How much is {amount} {src} in {dst}?", "What do {amount} {src} come to in {dst}?",
         "{amount} {src} in {dst}?"],
        ["If I change {amount} {src}, how many {dst} do I get?", "Exchange {amount} {src} into {dst} for me."],
        lambda rng, split: (lambda pair: {"src": pair[0], "dst": pair[1], "amount": number(rng, split, 5, 5000)})(rng.sample(CURRENCIES, 2)),
        lambda v: {"amount": v["amount"], "from_currency": v["src"], "to_currency": v["dst"]},
        lambda r: f"{r['amount']} {r['from']} is {r['result']} {r['to']} (rate {r['rate']}).",
    ),
    Scenario(
        "convert_time",
        ["If it's {time} in {a}, what time is it in {b}?", "Convert {time} {a} time to {b} time.", "What time is {time} in {a} for someone in {b}?"],
        ["My meeting is at {time} in {a}. When is that in {b}?", "{time} {a} → {b} local time?"],
        lambda rng, split: (lambda a, b: {"a": a, "b": b, "time": f"{rng.randint(0, 23):02d}:{(0 if split == 'train' else 30) + rng.choice([0, 15]):02d}"})(*two_cities(rng, split)),
        lambda v: {"time": v["time"], "from_timezone": v["a"], "to_timezone": v["b"]},
        lambda r: f"{r['from']} is {r['to']}.",
    ),
    Scenario(
        "get_current_time",
        ["What time is it now?", "What's today's date?", "Tell me the current UTC time.", "What day of the week is it?"],
        ["Do you know the exact time right now?", "Which date is it today?"],
        lambda rng, split: {},
        lambda v: {},
        lambda r: f"It is {r['utc']} ({r['weekday']}).",
    ),
    Scenario(
        "search_notes",
        ["Find my notes about {topic}.", "What did I write down about {topic}?", "Search my notes for {topic}.", "Look up my {topic} note."],
        ["Do I have anything in my notes on {topic}?", "Pull up whatever I noted about {topic}."],
        lambda rng, split: {"topic": rng.choice(halves(NOTE_TOPICS, split))},
        lambda v: {"query": v["topic"]},
        lambda r: (f"I found {r['count']} note(s). The best match is \"{r['results'][0]['title']}\": {r['results'][0]['text'][:160]}" if r["count"] else f"I found no note about {r['query']}."),
    ),
    Scenario(
        "define_word",
        ["What does {word} mean?", "Define {word}.", "Give me the definition of '{word}'.", "What is the meaning of the word {word}?"],
        ["I keep seeing the word {word}; what is it?", "Explain the term {word} in one sentence."],
        lambda rng, split: {"word": rng.choice(halves(WORDS, split))},
        lambda v: {"word": v["word"]},
        lambda r: f"{r['word'].capitalize()}: {r['definition']}",
    ),
    Scenario(
        "city_distance",
        ["How far is {a} from {b}?", "What's the distance between {a} and {b}?", "How many kilometers from {a} to {b}?"],
        ["If I fly from {a} to {b}, how long is the trip in km?", "Distance {a} to {b}?"],
        lambda rng, split: dict(zip(("a", "b"), two_cities(rng, split))),
        lambda v: {"from_city": v["a"], "to_city": v["b"]},
        lambda r: f"{r['from']} and {r['to']} are {r['distance']} {r['unit']} apart (great-circle distance).",
    ),
    Scenario(
        "create_event",
        ["Schedule a {title} on {date} at {time}.", "Put {title} in my calendar for {date} at {time}, {minutes} minutes.",
         "Add an event: {title}, {date} {time}, with {person}.", "Book {title} on {date} at {time} for {minutes} minutes."],
        ["Could you create a calendar entry '{title}' on {date} starting {time}?", "Remind me of {title}: set it for {date} at {time} with {person}."],
        lambda rng, split: {"title": rng.choice(halves(EVENTS, split)), "date": f"2026-{rng.randint(1, 12):02d}-{number(rng, split, 1, 27):02d}",
                            "time": f"{rng.randint(8, 18):02d}:{rng.choice(['00', '30'])}", "minutes": rng.choice([30, 45, 60, 90]), "person": rng.choice(halves(PEOPLE, split))},
        None,  # arguments depend on the phrasing (attendees, duration); see event_arguments
        lambda r: f"Done: \"{r['title']}\" is on your calendar on {r['date']} at {r['start_time']} for {r['duration_minutes']} minutes (id {r['event_id']}).",
    ),
]

SMALL_TALK = {
    "train": [("Hi! How are you today?", "I'm doing well, thanks for asking! How can I help you?"),
              ("Thanks, that was helpful.", "You're welcome! Let me know if you need anything else."),
              ("Tell me a fun fact.", "Octopuses have three hearts and blue blood."),
              ("Write a haiku about autumn.", "Crisp leaves drift and fall,\namber light on quiet paths,\nthe year exhales slow.")],
    "test": [("Good morning!", "Good morning! What can I do for you today?"),
             ("Can you suggest a name for a cat?", "How about Miso? It is short, sweet and easy to call.")],
}


def event_arguments(values: Values, phrasing: str) -> dict:
    """create_event's nested arguments: only what the user actually said."""
    event: dict = {"title": values["title"], "date": values["date"], "start_time": values["time"]}
    if "{minutes}" in phrasing:
        event["duration_minutes"] = values["minutes"]
    if "{person}" in phrasing:
        event["attendees"] = [{"name": values["person"]}]
    return {"event": event}


def make_conversation(rng: random.Random, split: str, registry, distractors: int = 2) -> ChatExample:
    """One conversation of the given split (a tool call, or small talk about 1 time in 10)."""
    from ..tools.calls import compact_json

    names = registry.names()
    if rng.random() < 0.1:
        prompt, answer = rng.choice(SMALL_TALK[split])
        offered = rng.sample(names, distractors + 1)
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        return ChatExample(messages, registry.subset(offered).schemas(), meta={"expected_tool": None, "split": split})
    scenario = rng.choice(SCENARIOS)
    phrasing = rng.choice(scenario.train_phrasings if split == "train" else scenario.test_phrasings)
    values = scenario.draw(rng, split)
    arguments = event_arguments(values, phrasing) if scenario.arguments is None else scenario.arguments(values)
    result = registry.get(scenario.tool)(**arguments)
    call_id = f"call_{rng.getrandbits(96):024x}"
    offered = [scenario.tool] + rng.sample([n for n in names if n != scenario.tool], distractors)
    rng.shuffle(offered)
    messages = [
        {"role": "user", "content": phrasing.format(**values)},
        {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {"name": scenario.tool, "arguments": compact_json(arguments)}}]},
        {"role": "tool", "tool_call_id": call_id, "name": scenario.tool, "content": compact_json(result)},
        {"role": "assistant", "content": scenario.reply(result)},
    ]
    return ChatExample(messages, registry.subset(offered).schemas(), meta={"expected_tool": scenario.tool, "split": split})


def make_tool_dataset(n_train: int = 400, n_test: int = 60, seed: int = 0, distractors: int = 2) -> tuple[list[ChatExample], list[ChatExample]]:
    """(train, test) conversations; the same seed always gives the same files."""
    from datetime import datetime, timezone

    from ..tools.builtin import default_registry

    registry = default_registry(now=datetime(2026, 1, 15, 9, 30, tzinfo=timezone.utc))  # frozen clock: reproducible files
    if not 0 <= distractors < len(registry):
        from ..errors import UserError

        raise UserError(f"--distractors must be between 0 and {len(registry) - 1}")
    rng = random.Random(seed)
    train = [make_conversation(rng, "train", registry, distractors) for _ in range(n_train)]
    test = [make_conversation(rng, "test", registry, distractors) for _ in range(n_test)]
    return train, test


def write_tool_dataset(out: str | Path, n_train: int = 400, n_test: int = 60, seed: int = 0, distractors: int = 2) -> tuple[Path, Path]:
    """Write OUT/train.jsonl and OUT/test.jsonl."""
    train, test = make_tool_dataset(n_train, n_test, seed, distractors)
    out = Path(out)
    return write_jsonl(out / "train.jsonl", train), write_jsonl(out / "test.jsonl", test)
