"""Tool calling by hand: a schema, a prompt, one constrained call, its result, the answer

You will learn:
- how a typed Python function becomes an OpenAI tool schema (name, description,
  JSON-schema parameters from the type hints, descriptions from the docstring);
- how tools reach a model whose chat template knows nothing about them: the
  tool prompt in the system message, calls written as
  `<tool_call>{"name":...,"arguments":{...}}</tool_call>`;
- why a 135M model needs *constrained decoding* to call tools reliably: a
  grammar built from the schemas masks every token that would break the call,
  so the output always parses and always matches the schema;
- the full round trip: parse the call, validate and run it, hand the result
  back, let the model answer.

Run:   python src/inferencing_and_advanced/04_tool_calling_basic.py   (or: llm-deeper lessons run inferencing_and_advanced/04)
Takes: about 40 s on 2 CPU cores (--quick: shorter generations).
"""

# %%
import json
import time
from typing import Literal

import jsonschema
import torch

from llm_deeper.chat_format import prompt_ids
from llm_deeper.inference.engine import Engine
from llm_deeper.lesson import check, done, is_quick, section, show
from llm_deeper.models.loaders import load_model
from llm_deeper.tools import tool
from llm_deeper.tools.builtin import default_registry
from llm_deeper.inference.constrained import ebnf
from llm_deeper.chat.tool_constraint import tool_call_constraint
from llm_deeper.agent.executor import ToolExecutor
from llm_deeper.tools.formats import HERMES
from llm_deeper.tools.render import render_tool_prompt, to_template_messages

QUICK = is_quick()
ANSWER_TOKENS = 12 if QUICK else 60  # quick mode checks only that an answer came, not what it says
FREE_TOKENS = 16 if QUICK else 40  # enough to see the unconstrained model start a call or prose

# %% [markdown]
# ## 1. A tool is a typed function with a docstring
# The decorator reads the signature: `str` becomes `"type": "string"`, a
# `Literal` becomes an `enum`, a parameter without a default is `required`,
# and the `Args:` section gives each parameter its description.

# %%
section("1. From a Python function to a tool schema")


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Current weather for a city.

    Args:
        city: City name, e.g. "Paris".
        unit: Temperature unit.
    """
    return {"city": city, "temperature": 11, "unit": unit}


schema = get_weather.schema()
print(json.dumps(schema, indent=2))
params = schema["function"]["parameters"]
check("the schema has OpenAI's shape", schema["type"] == "function" and schema["function"]["name"] == "get_weather")
check("a parameter without a default is required", params["required"] == ["city"])
check("Literal became an enum", params["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"])
check("the docstring gave each parameter its description", params["properties"]["city"]["description"] == 'City name, e.g. "Paris".')
meta_errors = list(jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA).iter_errors(params))
check("the parameters are a valid JSON schema (Draft 2020-12)", not meta_errors)

# %% [markdown]
# ## 2. The tool prompt
# The default model's ChatML template has no tool support, so the renderer
# writes each tool as a one-line signature (name, typed parameters, "?" for
# optional ones, defaults, enum values, description) into the system message,
# with the call format; what the grammar enforces (patterns, lengths) is left out. The same renderer writes the fine-tuning data, so a fine-tuned model
# sees at serving time exactly what it learned.

# %%
section("2. Tools in the prompt")
registry = default_registry().subset(["get_weather", "calculator", "convert_currency"])
messages = [{"role": "user", "content": "What is the weather like in Tokyo right now?"}]
template_messages = to_template_messages(messages, registry)
print(template_messages[0]["content"][:700] + " …")
loaded = load_model("smollm2-135m-instruct")
model, tokenizer = loaded.model, loaded.tokenizer
engine = Engine(loaded, max_batch=1)  # the library's one way to generate
ids = prompt_ids(tokenizer, messages, registry)
show("prompt tokens", len(ids))
show("tool prompt tokens", len(tokenizer(render_tool_prompt(registry))["input_ids"]))
check("the tool prompt is merged into a system message", template_messages[0]["role"] == "system" and "<tools>" in template_messages[0]["content"])

# %% [markdown]
# ## 3. Unconstrained: the model is free to write anything
# Greedy decoding, no grammar. A model this small often answers in prose,
# invents a tool, or writes JSON that does not parse; the parser never crashes,
# it reports what it found.

# %%
section("3. Without a grammar")
start = time.perf_counter()
free_text = engine.generate(ids, max_new_tokens=FREE_TOKENS).text
show("seconds", f"{time.perf_counter() - start:.1f}")
show("raw output", repr(free_text))
free = HERMES.parse(free_text, tool_names=registry.names())
show("parsed calls", [(c.name, c.arguments) for c in free.calls])
show("parser errors", free.errors)
check("the parser returned text, calls or clear errors (it never raises)", isinstance(free.content, str) and isinstance(free.errors, list))

# %% [markdown]
# ## 4. Constrained: `tool_choice="required"`
# The grammar allows exactly `<tool_call>{"name":<one of the tools>,
# "arguments":<JSON valid for that tool's schema>}</tool_call>`, in compact
# JSON. At every step xgrammar computes which tokens keep the output inside
# the grammar and the others get -inf before the pick.

# %%
section("4. With the tool grammar")
constraint = tool_call_constraint(registry, "required", parallel_tool_calls=False)
show("grammar rules (EBNF lines)", len(ebnf(constraint).splitlines()))
start = time.perf_counter()
call_text = engine.generate(ids, max_new_tokens=80, constraint=constraint).text
show("seconds", f"{time.perf_counter() - start:.1f}")
show("raw output", call_text)
parsed = HERMES.parse(call_text, tool_names=registry.names())
check("the constrained output parses as exactly one tool call", len(parsed.calls) == 1 and not parsed.errors and parsed.content == "")
call = parsed.calls[0]
valid = jsonschema.Draft202012Validator(registry.get(call.name).parameters).is_valid(call.arguments)
check(f"its arguments match the schema of {call.name}", valid, call.arguments_json)
check("the JSON is compact (no spaces outside strings)", call.arguments_json == json.dumps(call.arguments, separators=(",", ":"), ensure_ascii=False))
# The grammar guarantees a *valid* call, not the *right* one: that is the model's job (and the fine-tune's).
right_tool = call.name == "get_weather"
show("right tool (get_weather)?", "yes" if right_tool else f"no: {call.name}")
show("right city (Tokyo)?", "yes" if right_tool and call.arguments.get("city") == "Tokyo" else f"no: {call.arguments}")

# %% [markdown]
# ## 5. Run the call, hand the result back, get the answer
# The executor checks the arguments against the schema before running the
# tool (bad arguments would come back to the model as an error message). The
# result goes back as a `tool` message; the renderer writes it as a
# `<tool_response>` the model reads, and the model answers in text
# (`tool_choice="none"`: no grammar). The base 135M model often just echoes
# the result instead of phrasing an answer; the LoRA fine-tune on the
# synthetic tool data (same renderer, same format) is what teaches it to.

# %%
section("5. Execute and answer")
result = ToolExecutor(registry).run_one(call)
show("tool result", result.content)
check("the executor validated and ran the call", result.ok or result.error_kind == "tool_error", result.error_kind or "ok")
history = messages + [{"role": "assistant", "content": None, "tool_calls": [call.to_openai()]}, result.to_message()]
print(to_template_messages(history, registry)[-1]["content"])
start = time.perf_counter()
answer = engine.generate(history, max_new_tokens=ANSWER_TOKENS, tools=registry).text
show("seconds", f"{time.perf_counter() - start:.1f}")
show("answer", answer.strip())
check("the model answered in text after reading the tool result", len(answer.strip()) > 0)
check("the whole exchange stayed on CPU", next(model.parameters()).device == torch.device("cpu"))

# %%
engine.close()
done()
