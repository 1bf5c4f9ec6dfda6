"""A synthetic tool-calling data set built on the project's own tool registry.

Each conversation: the user asks something a tool answers; the assistant
emits a hermes-style call (`<tool_call>{"name":...,"arguments":{...}}</tool_call>`);
the tool really runs (the built-in tools are offline and deterministic) and
its result comes back as a `role: "tool"` message; the assistant answers in
plain words. Records use the OpenAI message shape plus a `tools` column (the
correct tool and a few distractors, in random order), and the prompt text
comes from `tools.render`, the renderer the server uses, so the model learns
the exact format it will be served with.

Besides the ten runnable built-in tools, a third of the conversations use the
216 generated tools of `toolgen` (24 domains), whose results are made up but
plausible. The test split is held out three times over: its questions use
phrasings and argument values the training split never contains, and its
generated tools are never seen in training, so a model can only score by
learning to read a signature and copy values, not by remembering names.

The mix (`MIX`) teaches restraint and the whole loop, not only selection:
40% of the conversations offer tools and need none (small talk, knowledge
questions, and near misses: the fitting tool is withheld and others of its
domain are offered, names the model has seen called elsewhere; or a request
from another domain), some make parallel calls, some chain two calls among
as many distractors as `eval agent` offers (the second copies a number from
the first result, then the answer states the final value), and some go on
after the answer (a thank-you). With only 10%
no-tool conversations the fine-tuned model answered "hello" with a tool call
(correct no-call 0.25, issue 16).

A "multi" conversation puts 2-3 requests behind one tool prompt, each its own
decision: a call to an offered tool (→ result → answer), a refusal of a tool of
the same domain (or a built-in one named like an offered one), or a plain
answer. The tool prompt is most of a single-exchange row, so these rows carry
more labelled decisions per token (3.25 assistant turns per row at share 0.8
against 1.73, for 1.23x the tokens). `with_multi(share)` makes such a mix;
at the speedrun's budget it did not beat the single-exchange mix across three seeds.

"Twins" ("twin" over the built-in tools, "gen_twin" over the generated ones) are two
rows over one offered tool list: a request an offered tool serves (a call) and one
none serves (a near miss or another domain's request, answered in words). They
share a `batch_group` value, which the trainer keeps in one step (bucketed or
not), so one update holds both decisions and only the request tells them apart.
`with_twins(share)` builds that share of a mix's refusals as twins of its calls,
keeping calls, refusals and chat at their shares of the rows. At the speedrun's
budget, five seeds each: correct no-call unchanged (12.8 of 24 with and without),
all right 18.8 -> 21.6 of 60, exact arguments 7.8 -> 10.8 of 41, no seed declining
more than 6 of 36 calls (without: up to 15); the same rows with the pairs split
across steps gained nothing, so the step is what carries it; at share 0.5 two seeds
of five declined 16-17 of 36 calls, so only full pairing was steady. No recipe uses them.

The test split has its own random stream and a fixed mix (`TEST_MIX`), so the
held-out set is the same whatever the training size or mix: a recipe change is
measured against an unmoved yardstick.
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
              ("Write a haiku about autumn.", "Crisp leaves drift and fall,\namber light on quiet paths,\nthe year exhales slow."),
              ("hello", "Hello! What can I do for you?"),
              ("Who are you?", "I'm a small assistant. I can chat and use the tools I'm given when a question needs them."),
              ("Tell me a joke.", "Why did the scarecrow win an award? Because he was outstanding in his field."),
              ("Good night!", "Good night! Sleep well."),
              ("I'm bored.", "How about a short walk, a puzzle, or learning one new word today?"),
              ("What's your favourite colour?", "I don't have one, but many people love blue."),
              ("Recommend a good book.", "Try \"The Hobbit\" by J.R.R. Tolkien: a short, warm adventure."),
              ("Give me a tip for sleeping better.", "Keep the same bedtime every night and put the phone away an hour before."),
              ("What's a good hobby to start?", "Drawing: all you need is a pencil and ten minutes a day."),
              ("I passed my exam!", "Congratulations! All that work paid off."),
              ("What should I cook tonight?", "A quick pasta with garlic, olive oil and whatever vegetables you have."),
              ("Do you like music?", "I can't listen to it, but I enjoy talking about it. What do you like?"),
              ("Write one line about the sea.", "The sea keeps folding the light into waves and giving it back."),
              ("Motivate me to go for a run.", "Ten minutes in, you'll be glad you went. Shoes on, door open, go!")],
    "test": [("Good morning!", "Good morning! What can I do for you today?"),
             ("Can you suggest a name for a cat?", "How about Miso? It is short, sweet and easy to call."),
             ("hey there", "Hey! How can I help?"),
             ("Say something nice.", "You are doing great, and it is good to have you here."),
             ("How is your day going?", "It's going well, thank you! What can I help you with?")],
}

# Questions no built-in tool answers: the assistant answers from what it knows.
GENERAL = {
    "train": [("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
              ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
              ("How many legs does a spider have?", "A spider has eight legs."),
              ("What do you get by mixing blue and yellow paint?", "Mixing blue and yellow gives green."),
              ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet."),
              ("What language is spoken in Brazil?", "Portuguese is the main language of Brazil."),
              ("How many continents are there?", "There are seven continents."),
              ("Who was the first person on the Moon?", "Neil Armstrong was the first person to walk on the Moon, in 1969."),
              ("Who composed the Four Seasons?", "Antonio Vivaldi composed The Four Seasons."),
              ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
              ("How many strings does a violin have?", "A violin has four strings."),
              ("Who discovered penicillin?", "Alexander Fleming discovered penicillin in 1928."),
              ("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level."),
              ("Which country has the most people?", "India has the largest population, just ahead of China.")],
    "test": [("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
             ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest ocean on Earth."),
             ("How many days are in a leap year?", "A leap year has 366 days."),
             ("What gas do plants take in from the air?", "Plants take in carbon dioxide from the air.")],
}

THANKS = {
    "train": [("Thanks!", "You're welcome!"), ("Great, thank you.", "Glad I could help!"), ("Perfect, thanks a lot.", "Any time!")],
    "test": [("Thank you so much.", "You're welcome, happy to help!"), ("Cool, thanks.", "No problem!")],
}

# What each tool does, for the assistant's answer when the fitting tool is not offered.
ABILITY = {"get_weather": "check the weather", "calculator": "do that calculation", "convert_units": "convert units",
           "convert_currency": "convert currencies", "convert_time": "convert times between time zones",
           "get_current_time": "tell the current time", "search_notes": "search your notes", "define_word": "look up definitions",
           "city_distance": "measure distances between cities", "create_event": "add calendar events"}

# Two calls in one turn: (scenario tool, train templates, test templates); slots a/b hold each call's values.
PARALLEL = {
    "get_weather": (["What's the weather in {city_a} and in {city_b}?", "Weather in {city_a} and {city_b}, please."],
                    ["How are the conditions in {city_a} and {city_b} right now?"]),
    "define_word": (["Define {word_a} and {word_b}.", "What do {word_a} and {word_b} mean?"],
                    ["Explain the words {word_a} and {word_b}."]),
    "calculator": (["Calculate {expr_a} and {expr_b}.", "What are {expr_a} and {expr_b}?"],
                   ["Work out both {expr_a} and {expr_b}, please."]),
}

# Two calls in a row, the second built on the first's result: call → result → call →
# result → answer (what `llm-deeper eval agent` calls a two-step task). Each chain:
# (train templates, test templates, build), build(rng, split, registry) → (slots, calls,
# answer), where calls is [(tool, arguments)] and the second call's arguments copy a
# number from the first result. `eval agent` has its own request wordings; these are
# the generator's, with train and test pools apart as everywhere else.
def _chain_round_trip(rng: random.Random, split: str, registry):
    a, b = two_cities(rng, split)
    distance = registry.get("city_distance")(from_city=a, to_city=b)["distance"]
    total = registry.get("calculator")(expression=f"{distance} * 2")["result"]
    return ({"a": a, "b": b}, [("city_distance", {"from_city": a, "to_city": b}), ("calculator", {"expression": f"{distance} * 2"})],
            f"{a} to {b} is {distance} km, so the round trip is {total} km.")


def _chain_hours(rng: random.Random, split: str, registry):
    a, b = two_cities(rng, split)
    speed = number(rng, split, 60, 900)
    distance = registry.get("city_distance")(from_city=a, to_city=b)["distance"]
    hours = registry.get("calculator")(expression=f"{distance} / {speed}")["result"]
    return ({"a": a, "b": b, "speed": speed}, [("city_distance", {"from_city": a, "to_city": b}), ("calculator", {"expression": f"{distance} / {speed}"})],
            f"{a} to {b} is {distance} km; at {speed} km/h that takes {hours} hours.")


def _chain_weather_units(rng: random.Random, split: str, registry):
    city = rng.choice(halves(CITIES, split))
    unit = rng.choice(["fahrenheit", "kelvin"])
    celsius = registry.get("get_weather")(city=city)["temperature"]
    converted = registry.get("convert_units")(value=celsius, from_unit="celsius", to_unit=unit)["result"]
    return ({"city": city, "unit": UNIT_WORDS.get(unit, unit)}, [("get_weather", {"city": city}), ("convert_units", {"value": celsius, "from_unit": "celsius", "to_unit": unit})],
            f"It is {celsius}°C in {city}, which is {converted} {UNIT_WORDS.get(unit, unit)}.")


def _chain_split(rng: random.Random, split: str, registry):
    source, target = rng.sample(CURRENCIES, 2)
    amount, people = number(rng, split, 20, 2000), rng.choice([2, 4, 6] if split == "train" else [3, 5, 7])
    converted = registry.get("convert_currency")(amount=amount, from_currency=source, to_currency=target)["result"]
    each = registry.get("calculator")(expression=f"{converted} / {people}")["result"]
    return ({"amount": amount, "src": source, "dst": target, "people": people},
            [("convert_currency", {"amount": amount, "from_currency": source, "to_currency": target}), ("calculator", {"expression": f"{converted} / {people}"})],
            f"{amount} {source} is {converted} {target}, so each of the {people} gets {each} {target}.")


CHAINS = {
    "round_trip": (["What's the round-trip distance between {a} and {b}?", "How far is it from {a} to {b} and back again, in km?"],
                   ["Going from {a} to {b} and returning, how many km is that?"], _chain_round_trip),
    "hours": (["At {speed} km/h, how many hours does the trip from {a} to {b} take?", "How long in hours from {a} to {b} at {speed} km/h?"],
              ["Travelling at {speed} km/h, how many hours from {a} to {b}?"], _chain_hours),
    "weather_units": (["What's {city}'s temperature in {unit}?", "How warm is it in {city}, in {unit}?"],
                      ["Give me the current temperature of {city} in {unit}."], _chain_weather_units),
    "split": (["Convert {amount} {src} to {dst} and split it {people} ways.", "{amount} {src} shared by {people} people: how much {dst} each?"],
              ["Change {amount} {src} into {dst} and divide it among {people} people."], _chain_split),
}

# Shares of each kind of conversation (they sum to 1); see the module docstring. 40% need
# no call at all. The "gen_" kinds use the generated tools of `toolgen` (216 schemas, 24
# domains; the test split's tools are never seen in training): a call, a near miss (the
# request's tool withheld, its domain's other tools offered, names that are positives
# elsewhere, so the name alone cannot decide) and a request from another domain.
# "second_call" (a second question needing another tool after the first answer)
# averages ~970 tokens with the default tokenizer, so the recipe leaves it out;
# `make_tool_dataset(mix=...)` can add it. Shifting no-call weight to near misses at the speedrun's budget
# (3 seeds per arm, bench/RESULTS.md, issue 23, 2026-12-08): held-out near misses declined 1.3 -> 4.7 of 11,
# right tool 22.7 -> 17.7 of 36 (calls declined), and cutting knowledge rows made knowledge questions get calls.
MIX = {"call": 0.14, "parallel": 0.06, "thanks": 0.04, "second_call": 0.0, "chain": 0.08, "gen_call": 0.28,
       "small_talk": 0.08, "general": 0.08, "near_miss": 0.06, "gen_near_miss": 0.10, "gen_other": 0.08, "multi": 0.0,
       "twin": 0.0, "gen_twin": 0.0}
# "twin" and "gen_twin" (0 here; `with_twins` sets them): each draw writes two rows over one offered tool list, a
# request an offered tool serves (a call) and one none serves (answered in words), sharing a `batch_group` value
# so the trainer puts them in one step. "twin" uses the built-in tools (the unserved request is a built-in tool's,
# one named like an offered tool where there is one), "gen_twin" the generated ones (the unserved request is for
# a tool of the called tool's domain that is not offered, or GEN_TWIN_OTHER of the time another domain's).
TWIN_KINDS = ("twin", "gen_twin")
GEN_TWIN_OTHER = 0.45  # MIX's generated refusals are gen_near_miss 0.10 : gen_other 0.08
# "multi" (0 here, so this mix's draws stay as they were; `with_multi` sets its share): one tool prompt, then
# MULTI_TURNS requests whose kinds are drawn from MULTI_KINDS, MULTI_GENERATED of them over generated tools.
MULTI_TURNS = (2, 3)
# Measured against the single-exchange mix at the speedrun's token budget (bench/RESULTS.md, issue 23, 2026-12-07
# night): these kinds at share 0.8 gained at seed 0, lost at seed 1 and declined nearly every call at seed 2, so no
# recipe uses "multi". "other" (a refusal of another domain's tool) at 0.15, taken from near_miss, did not lift BFCL
# irrelevance.
MULTI_KINDS = {"call": 0.5, "near_miss": 0.3, "other": 0.0, "chat": 0.2}
MULTI_GENERATED = 0.7
NO_CALL_KINDS = ("small_talk", "general", "near_miss", "gen_near_miss", "gen_other")

# The held-out set's own mix, fixed, so a change to the training mix does not move the
# yardstick (chains are scored end to end by `llm-deeper eval agent` instead). Its
# "gen_" conversations use only the held-out tools.
TEST_MIX = {"call": 0.15, "parallel": 0.05, "thanks": 0.05, "gen_call": 0.35, "small_talk": 0.08, "general": 0.08,
            "near_miss": 0.06, "gen_near_miss": 0.10, "gen_other": 0.08}
AGENT_DISTRACTORS = 2  # what `llm-deeper eval agent` offers besides the needed tools; chains offer as many


def event_arguments(values: Values, phrasing: str) -> dict:
    """create_event's nested arguments: only what the user actually said."""
    event: dict = {"title": values["title"], "date": values["date"], "start_time": values["time"]}
    if "{minutes}" in phrasing:
        event["duration_minutes"] = values["minutes"]
    if "{person}" in phrasing:
        event["attendees"] = [{"name": values["person"]}]
    return {"event": event}


def _call_and_result(rng: random.Random, tool: str, arguments: dict, result) -> tuple[dict, dict]:
    """One OpenAI tool call (with a fresh random id) and the `tool` message that answers it."""
    from ..tools.calls import compact_json

    call_id = f"call_{rng.getrandbits(96):024x}"
    return ({"id": call_id, "type": "function", "function": {"name": tool, "arguments": compact_json(arguments)}},
            {"role": "tool", "tool_call_id": call_id, "name": tool, "content": compact_json(result)})


def _tool_turn(rng: random.Random, split: str, registry, scenario: Scenario | None = None) -> tuple[list[dict], str]:
    """[user, assistant(call), tool] and the final answer text for one question a tool answers."""
    scenario = scenario or rng.choice(SCENARIOS)
    phrasing = rng.choice(scenario.train_phrasings if split == "train" else scenario.test_phrasings)
    values = scenario.draw(rng, split)
    arguments = event_arguments(values, phrasing) if scenario.arguments is None else scenario.arguments(values)
    result = registry.get(scenario.tool)(**arguments)
    call, response = _call_and_result(rng, scenario.tool, arguments, result)
    messages = [{"role": "user", "content": phrasing.format(**values)}, {"role": "assistant", "content": None, "tool_calls": [call]}, response]
    return messages, scenario.reply(result)


def _parallel_turn(rng: random.Random, split: str, registry) -> tuple[list[dict], str, str]:
    """[user, assistant(2 calls), tool, tool], the answer, and the tool (two draws of one scenario)."""
    tool = rng.choice(sorted(PARALLEL))
    scenario = next(s for s in SCENARIOS if s.tool == tool)
    train_templates, test_templates = PARALLEL[tool]
    while True:  # two different values
        a, b = scenario.draw(rng, split), scenario.draw(rng, split)
        if a != b:
            break
    slots = {f"{key}_{tag}": value for tag, drawn in (("a", a), ("b", b)) for key, value in drawn.items()}
    calls, results, answers = [], [], []
    for drawn in (a, b):
        arguments = scenario.arguments(drawn)
        result = registry.get(tool)(**arguments)
        call, response = _call_and_result(rng, tool, arguments, result)
        calls.append(call)
        results.append(response)
        answers.append(scenario.reply(result))
    user = rng.choice(train_templates if split == "train" else test_templates).format(**slots)
    return [{"role": "user", "content": user}, {"role": "assistant", "content": None, "tool_calls": calls}, *results], " ".join(answers), tool


def _chain_conversation(rng: random.Random, split: str, registry, meta: dict) -> ChatExample:
    """[user, assistant(call 1), tool, assistant(call 2 from result 1), tool, assistant(answer)], the two tools offered."""
    name = rng.choice(sorted(CHAINS))
    train_templates, test_templates, build = CHAINS[name]
    slots, calls, answer = build(rng, split, registry)
    messages: list[dict] = [{"role": "user", "content": rng.choice(train_templates if split == "train" else test_templates).format(**slots)}]
    for tool, arguments in calls:
        call, response = _call_and_result(rng, tool, arguments, registry.get(tool)(**arguments))
        messages += [{"role": "assistant", "content": None, "tool_calls": [call]}, response]
    messages.append({"role": "assistant", "content": answer})
    needed = [tool for tool, _ in calls]
    offered = _offer(rng, registry.names(), needed, AGENT_DISTRACTORS)
    return ChatExample(messages, registry.subset(offered).schemas(), meta={**meta, "expected_tool": calls[0][0], "chain": name})


def _offer(rng: random.Random, names: list[str], needed: list[str], distractors: int) -> list[str]:
    """The needed tools plus `distractors` others, shuffled."""
    offered = list(dict.fromkeys(needed)) + rng.sample([n for n in names if n not in needed], distractors)
    rng.shuffle(offered)
    return offered


def _near_misses(tool: str, names: list[str]) -> list[str]:
    """Other tools whose names share a word with `tool` (convert_units → convert_currency, convert_time)."""
    words = set(tool.split("_"))
    return [n for n in names if n != tool and words & set(n.split("_"))]


def _generated_conversation(rng: random.Random, split: str, kind: str, distractors: int, meta: dict) -> ChatExample:
    """A conversation over the generated tools: a call with its result and answer, or a request no offered tool serves."""
    from . import toolgen

    own = toolgen.tools_of(split)  # training never sees the test split's tools, not even as distractors
    tool = rng.choice(own)
    request, arguments = toolgen.make_request(rng, split, tool)
    if kind == "gen_call":
        result, answer = toolgen.make_result(rng, tool, arguments)
        call, response = _call_and_result(rng, tool.name, arguments, result)
        messages = [{"role": "user", "content": request}, {"role": "assistant", "content": None, "tool_calls": [call]}, response,
                    {"role": "assistant", "content": answer}]
        return ChatExample(messages, toolgen.offer(rng, own, [tool], distractors), meta={**meta, "expected_tool": tool.name})
    pool = toolgen.TOOLS if split == "test" else own
    if kind == "gen_near_miss":  # same domain, another capability
        others = [t for t in pool if t.domain is tool.domain and t.name != tool.name]
    else:  # another domain altogether
        others = [t for t in pool if t.domain is not tool.domain]
    offered = rng.sample(others, min(len(others), distractors + 1))
    messages = [{"role": "user", "content": request}, {"role": "assistant", "content": toolgen.cannot(tool)}]
    return ChatExample(messages, [t.schema for t in offered], meta={**meta, "expected_tool": None, "withheld_tool": tool.name})


def _refusal(rng: random.Random, split: str, registry, offered: list[str], similar: bool) -> tuple[str, str]:
    """(request, answer) for a built-in tool that is not offered; `similar`: preferring one named like an offered tool."""
    missing = [s for s in SCENARIOS if s.tool not in offered]
    alike = [s for s in missing if any(s.tool in _near_misses(name, registry.names()) for name in offered)]
    scenario = rng.choice((alike if similar else []) or missing)
    phrasing = rng.choice(scenario.train_phrasings if split == "train" else scenario.test_phrasings)
    answer = f"I can't {ABILITY[scenario.tool]} with the tools I have here ({', '.join(sorted(offered))}), so I can't answer that one."
    return phrasing.format(**scenario.draw(rng, split)), answer


def _chat_exchange(rng: random.Random, split: str) -> tuple[str, str]:
    """(request, answer) that needs no tool: small talk or a knowledge question, even odds."""
    return rng.choice((SMALL_TALK if rng.random() < 0.5 else GENERAL)[split])


def _multi_conversation(rng: random.Random, split: str, registry, distractors: int, meta: dict) -> ChatExample:
    """One tool prompt, then 2-3 requests, each its own decision: a call (→ result → answer), a refusal or a plain answer.

    The tool prompt is ~80% of a single-exchange row, so each further exchange adds a labelled decision for a
    fifth of a row's tokens. A "near_miss" refusal asks for a tool of an offered tool's domain (or a built-in one
    named like an offered one), so in one conversation the same names are called for one request and declined for
    another; an "other" refusal asks for another domain's tool.
    """
    from . import toolgen

    turns = rng.choice(MULTI_TURNS)
    kinds = rng.choices(list(MULTI_KINDS), weights=list(MULTI_KINDS.values()), k=turns)
    messages: list[dict] = []
    if rng.random() < MULTI_GENERATED:
        own = toolgen.tools_of(split)
        first = rng.choice(own)
        offered = [first] + rng.sample([t for t in own if t.name != first.name], distractors)
        rng.shuffle(offered)
        names = {t.name for t in offered}
        domains = {t.domain.entity for t in offered}
        for kind in kinds:
            if kind == "call":
                tool = rng.choice(offered)
                request, arguments = toolgen.make_request(rng, split, tool)
                result, answer = toolgen.make_result(rng, tool, arguments)
                call, response = _call_and_result(rng, tool.name, arguments, result)
                messages += [{"role": "user", "content": request}, {"role": "assistant", "content": None, "tool_calls": [call]}, response,
                             {"role": "assistant", "content": answer}]
                last = tool.name
            elif kind in ("near_miss", "other"):  # a tool of an offered tool's domain, or of another domain, not offered
                near = [t for t in own if t.name not in names and (t.domain.entity in domains) == (kind == "near_miss")]
                tool = rng.choice(near or [t for t in own if t.name not in names])
                messages += [{"role": "user", "content": toolgen.make_request(rng, split, tool)[0]}, {"role": "assistant", "content": toolgen.cannot(tool)}]
                last = None
            else:
                prompt, answer = _chat_exchange(rng, split)
                messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
                last = None
        return ChatExample(messages, [t.schema for t in offered], meta={**meta, "turns": turns, "expected_tool": last})
    offered = _offer(rng, registry.names(), [rng.choice(SCENARIOS).tool], distractors)
    for kind in kinds:
        if kind == "call":
            scenario = rng.choice([s for s in SCENARIOS if s.tool in offered])
            exchange, answer = _tool_turn(rng, split, registry, scenario)
            messages += exchange + [{"role": "assistant", "content": answer}]
            last = scenario.tool
        else:
            request, answer = _refusal(rng, split, registry, offered, kind == "near_miss") if kind != "chat" else _chat_exchange(rng, split)
            messages += [{"role": "user", "content": request}, {"role": "assistant", "content": answer}]
            last = None
    return ChatExample(messages, registry.subset(offered).schemas(), meta={**meta, "turns": turns, "expected_tool": last})  # the last request's tool


def _twin_conversations(rng: random.Random, split: str, registry, kind: str, distractors: int, meta: dict) -> list[ChatExample]:
    """Twins: one offered tool list, then [a request an offered tool serves (call → result → answer), a request none
    serves (answered in words)].

    A lone near miss differs from a lone call in its tools *and* its request, so a model can learn "this kind of
    request gets a call" from the request alone and never read the list; twins differ in the request only, so
    what tells the two decisions apart is whether the offered list serves it. The rows share a `batch_group`
    (set by `make_tool_dataset`), so the trainer puts both in one step and one update carries both decisions.
    """
    if kind == "gen_twin":
        from . import toolgen

        own = toolgen.tools_of(split)  # training never sees the test split's tools
        tool = rng.choice(own)
        offered = [tool] + rng.sample([t for t in own if t.name != tool.name], distractors)
        rng.shuffle(offered)
        names = {t.name for t in offered}
        request, arguments = toolgen.make_request(rng, split, tool)
        result, answer = toolgen.make_result(rng, tool, arguments)
        call, response = _call_and_result(rng, tool.name, arguments, result)
        same_domain = rng.random() >= GEN_TWIN_OTHER
        unserved = [t for t in own if t.name not in names and (t.domain is tool.domain) == same_domain]
        withheld = rng.choice(unserved or [t for t in own if t.name not in names])
        schemas = [t.schema for t in offered]
        called = [{"role": "user", "content": request}, {"role": "assistant", "content": None, "tool_calls": [call]}, response,
                  {"role": "assistant", "content": answer}]
        declined = [{"role": "user", "content": toolgen.make_request(rng, split, withheld)[0]},
                    {"role": "assistant", "content": toolgen.cannot(withheld)}]
        return [ChatExample(called, schemas, meta={**meta, "expected_tool": tool.name}),
                ChatExample(declined, schemas, meta={**meta, "expected_tool": None, "withheld_tool": withheld.name})]
    scenario = rng.choice(SCENARIOS)
    offered = _offer(rng, registry.names(), [scenario.tool], distractors)
    exchange, answer = _tool_turn(rng, split, registry, scenario)
    request, refusal = _refusal(rng, split, registry, offered, similar=True)
    schemas = registry.subset(offered).schemas()
    return [ChatExample(exchange + [{"role": "assistant", "content": answer}], schemas, meta={**meta, "expected_tool": scenario.tool}),
            ChatExample([{"role": "user", "content": request}, {"role": "assistant", "content": refusal}], schemas, meta={**meta, "expected_tool": None})]


def make_conversations(rng: random.Random, split: str, registry, distractors: int = 2, mix: dict[str, float] | None = None) -> list[ChatExample]:
    """One draw of the given split, its kind drawn from `mix` (default `MIX`): one conversation, or two for twins."""
    names = registry.names()
    mix = mix or MIX
    kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    meta = {"split": split, "kind": kind}
    if kind in TWIN_KINDS:
        return _twin_conversations(rng, split, registry, kind, distractors, meta)
    return [_conversation(rng, split, registry, distractors, kind, names, meta)]


def _conversation(rng: random.Random, split: str, registry, distractors: int, kind: str, names: list[str], meta: dict) -> ChatExample:
    """One conversation of a single-row kind."""
    if kind in ("small_talk", "general"):
        prompt, answer = rng.choice((SMALL_TALK if kind == "small_talk" else GENERAL)[split])
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        return ChatExample(messages, registry.subset(rng.sample(names, distractors + 1)).schemas(), meta={**meta, "expected_tool": None})
    if kind == "near_miss":
        scenario = rng.choice(SCENARIOS)
        phrasing = rng.choice(scenario.train_phrasings if split == "train" else scenario.test_phrasings)
        values = scenario.draw(rng, split)
        similar = _near_misses(scenario.tool, names)
        others = [n for n in names if n != scenario.tool and n not in similar]
        offered = rng.sample(similar, min(len(similar), distractors + 1))
        offered += rng.sample(others, distractors + 1 - len(offered))
        rng.shuffle(offered)
        answer = f"I can't {ABILITY[scenario.tool]} with the tools I have here ({', '.join(sorted(offered))}), so I can't answer that one."
        messages = [{"role": "user", "content": phrasing.format(**values)}, {"role": "assistant", "content": answer}]
        return ChatExample(messages, registry.subset(offered).schemas(), meta={**meta, "expected_tool": None, "withheld_tool": scenario.tool})
    if kind == "chain":
        return _chain_conversation(rng, split, registry, meta)
    if kind == "multi":
        return _multi_conversation(rng, split, registry, distractors, meta)
    if kind.startswith("gen_"):
        return _generated_conversation(rng, split, kind, distractors, meta)
    if kind == "parallel":
        messages, answer, tool = _parallel_turn(rng, split, registry)
        messages.append({"role": "assistant", "content": answer})
        return ChatExample(messages, registry.subset(_offer(rng, names, [tool], distractors)).schemas(), meta={**meta, "expected_tool": tool})
    messages, answer = _tool_turn(rng, split, registry)
    messages.append({"role": "assistant", "content": answer})
    needed = [messages[1]["tool_calls"][0]["function"]["name"]]
    if kind == "thanks":
        thanks, reply = rng.choice(THANKS[split])
        messages += [{"role": "user", "content": thanks}, {"role": "assistant", "content": reply}]
        meta["expected_tool"] = None  # what is scored: the reply after the last user message
    elif kind == "second_call":
        scenario = rng.choice([s for s in SCENARIOS if s.tool not in needed])
        more, second_answer = _tool_turn(rng, split, registry, scenario)
        messages += more + [{"role": "assistant", "content": second_answer}]
        needed.append(scenario.tool)
        meta["expected_tool"] = scenario.tool
    else:
        meta["expected_tool"] = needed[0]
    return ChatExample(messages, registry.subset(_offer(rng, names, needed, distractors)).schemas(), meta=meta)


def make_tool_dataset(n_train: int = 400, n_test: int = 60, seed: int = 0, distractors: int = 2,
                      mix: dict[str, float] | None = None, test_mix: dict[str, float] | None = None) -> tuple[list[ChatExample], list[ChatExample]]:
    """(train, test) conversations; the same seed always gives the same files.

    The test split draws from its own random stream and mix (`test_mix`; else `mix`
    when one is given, else `TEST_MIX`), so with the default mixes the held-out set
    stays the same when the training size or mix changes.
    """
    from datetime import datetime, timezone

    from ..tools.builtin import default_registry

    registry = default_registry(now=datetime(2026, 1, 15, 9, 30, tzinfo=timezone.utc))  # frozen clock: reproducible files
    if not 0 <= distractors < len(registry):
        from ..errors import UserError

        raise UserError(f"--distractors must be between 0 and {len(registry) - 1}")
    unknown = (set(mix or {}) | set(test_mix or {})) - set(MIX)
    if unknown:
        from ..errors import UserError

        raise UserError(f"unknown conversation kind(s) {', '.join(sorted(unknown))}; choose from {', '.join(MIX)}")
    rng, test_rng = random.Random(seed), random.Random(f"test-{seed}")
    train = _draw_rows(rng, "train", registry, distractors, mix, n_train)
    test = _draw_rows(test_rng, "test", registry, distractors, test_mix or mix or TEST_MIX, n_test)
    return train, test


def _draw_rows(rng: random.Random, split: str, registry, distractors: int, mix: dict[str, float] | None, n: int) -> list[ChatExample]:
    """`n` conversations; twins get one `batch_group` value (the trainer keeps a group in one step)."""
    rows: list[ChatExample] = []
    while len(rows) < n:
        drawn = make_conversations(rng, split, registry, distractors, mix)
        if len(drawn) > 1:
            for example in drawn:
                example.meta["batch_group"] = f"{split}-{len(rows)}"
        rows += drawn
    if len(rows) > n:  # twins drawn last: the call row stays, alone
        del rows[n:]
        rows[-1].meta.pop("batch_group", None)
    return rows


def with_multi(share: float, mix: dict[str, float] = MIX) -> dict[str, float]:
    """`mix` with `share` of its conversations multi-exchange ("multi"), every other kind scaled down to make room."""
    return {**{kind: weight * (1 - share) for kind, weight in mix.items()}, "multi": share}


def with_twins(share: float, mix: dict[str, float] = MIX) -> dict[str, float]:
    """`mix` with `share` of its tool-like refusals built as twins of call rows; the same rows of each kind.

    Each twinned refusal takes one call row of its side as its twin (near_miss with "call", gen_near_miss and
    gen_other with "gen_call"), so calls, refusals and chat keep their shares of the rows and only the pairing
    changes. A twin draw writes two rows, so its weight (per draw) is its pairs.
    """
    if not 0 <= share <= 1:
        raise ValueError(f"twin share must be in [0, 1], got {share}")
    builtin = share * mix["near_miss"]
    generated = share * (mix["gen_near_miss"] + mix["gen_other"])
    if builtin > mix["call"] or generated > mix["gen_call"]:
        raise ValueError("not enough call rows to twin that many refusals")
    return {**mix, "call": mix["call"] - builtin, "near_miss": mix["near_miss"] - builtin, "gen_call": mix["gen_call"] - generated,
            "gen_near_miss": mix["gen_near_miss"] * (1 - share), "gen_other": mix["gen_other"] * (1 - share),
            "twin": mix.get("twin", 0.0) + builtin, "gen_twin": mix.get("gen_twin", 0.0) + generated}


def write_tool_dataset(out: str | Path, n_train: int = 400, n_test: int = 60, seed: int = 0, distractors: int = 2,
                       mix: dict[str, float] | None = None, test_mix: dict[str, float] | None = None) -> tuple[Path, Path]:
    """Write OUT/train.jsonl and OUT/test.jsonl (mixes as in `make_tool_dataset`)."""
    train, test = make_tool_dataset(n_train, n_test, seed, distractors, mix, test_mix)
    out = Path(out)
    return write_jsonl(out / "train.jsonl", train), write_jsonl(out / "test.jsonl", test)
