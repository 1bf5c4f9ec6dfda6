"""Tool calling, advanced: an agent loop, parallel calls, error recovery, streamed call deltas

You will learn:
- how your own tools join the built-in registry;
- how the executor protects the loop: arguments are checked against the
  schema before a tool runs, and a wrong call comes back to the model as an
  error message it can correct (shown with a scripted model, so it is
  reproducible);
- that parallel calls of one turn run concurrently, each with a timeout;
- the agent loop with the real default model, constrained: it must call a
  tool first, then answers from the tool results;
- how a server streams a call: the name first, then argument fragments, as
  OpenAI `delta.tool_calls`, and why the sum of the deltas equals the call
  parsed whole.

Run:   python src/inferencing_and_advanced/05_tool_calling_advanced.py   (or: llm-deeper lessons run inferencing_and_advanced/05)
Takes: about 50 s on 2 CPU cores (--quick: shorter generations).
"""

# %%
import json
import time

import jsonschema

from llm_deeper.inference.engine import Engine
from llm_deeper.lesson import check, done, is_quick, section, show
from llm_deeper.models.loaders import load_model
from llm_deeper.tools import ToolCall, ToolError
from llm_deeper.chat.engine_model import EngineChatModel
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.agent.loop import Agent, AgentConfig, ScriptedBackend
from llm_deeper.tools.builtin import default_registry
from llm_deeper.chat.tool_constraint import tool_call_constraint
from llm_deeper.agent.executor import ExecutorConfig, ToolExecutor
from llm_deeper.tools.formats import HERMES
from llm_deeper.tools.render import format_tool_calls
from llm_deeper.tools.streaming import StreamingToolParser, ToolCallDelta, accumulate

QUICK = is_quick()
ANSWER_TOKENS = 24 if QUICK else 60

# %% [markdown]
# ## 1. Your own tools next to the built-in ones
# A registry is an ordered set of tools; `registry.tool` registers a typed
# function. Tools signal a bad request with `ToolError`: its message goes back
# to the model instead of a traceback.

# %%
section("1. A registry with a tool of our own")
registry = default_registry()
ORDERS = {1042: {"status": "shipped", "eta": "2026-12-02"}, 1043: {"status": "preparing", "eta": "2026-12-05"}}


@registry.tool
def order_status(order_id: int) -> dict:
    """Status and delivery date of a customer order.

    Args:
        order_id: The order number, e.g. 1042.
    """
    if order_id not in ORDERS:
        raise ToolError(f"no order {order_id}; known orders: {sorted(ORDERS)}")
    time.sleep(0.5)  # pretend to ask a slow shop system
    return {"order_id": order_id, **ORDERS[order_id]}


show("tools", registry.names())
check("our tool joined the registry with an integer parameter", registry.get("order_status").parameters["properties"]["order_id"]["type"] == "integer")

# %% [markdown]
# ## 2. Error recovery (scripted model)
# A scripted backend replays model text written in advance, so this part is
# the same on every run. Its first call uses a wrong argument name; the
# executor refuses it before running anything and returns the reason, with the
# schema; the "model" then corrects itself.

# %%
section("2. A wrong call, the error message, the corrected call")
script = ScriptedBackend([
    format_tool_calls([ToolCall("order_status", {"order": "1042"})]),
    format_tool_calls([ToolCall("order_status", {"order_id": 1042})]),
    "Your order 1042 has shipped and should arrive on 2026-12-02.",
])
result = Agent(script, registry, AgentConfig(max_steps=4)).run("Where is my order 1042?")
for step in result.steps:
    for item in step.results:
        show(f"step {step.index} {item.call.name}({item.call.arguments_json})", item.content[:110])
first_error = result.steps[0].results[0]
check("the invalid call never ran: it came back as invalid_arguments", first_error.error_kind == "invalid_arguments")
check("the error message names the missing parameter", "'order_id' is a required property" in first_error.content)
check("the model saw the error as a tool message", script.seen[1][-1]["role"] == "tool")
check("after the correction the tool ran and the loop ended with an answer",
      result.steps[1].results[0].ok and result.stopped == "answer", result.answer)

# %% [markdown]
# ## 3. Parallel calls run concurrently
# Two slow calls in one turn: each runs in its own worker process with its
# own deadline (a call past it is killed), so the turn takes about as long as
# the slowest call, not the sum.

# %%
section("3. Parallel calls")
executor = ToolExecutor(registry, ExecutorConfig(timeout_s=5))
calls = [ToolCall("order_status", {"order_id": 1042}), ToolCall("order_status", {"order_id": 1043})]
start = time.perf_counter()
results = executor.run(calls)
elapsed = time.perf_counter() - start
show("results", [r.content for r in results])
# A timing is printed, never checked: a busy machine can stretch any wall time.
show("seconds for two 0.5 s calls (one after the other would take 1.0 s)", f"{elapsed:.2f}")
check("both calls succeeded, results in call order", [json.loads(r.content)["order_id"] for r in results] == [1042, 1043])

# %% [markdown]
# ## 4. The agent loop with the real model
# The first turn is constrained to a tool call (`tool_choice="required"`),
# the next turn must answer in text (`"none"`). A 135M model picks tools
# imperfectly, but every call it makes is valid by construction.

# %%
section("4. Agent loop, default model")
loaded = load_model("smollm2-135m-instruct")
engine = Engine(loaded, max_batch=1)  # the library's one way to generate
small = registry.subset(["calculator", "get_weather", "convert_currency"])
backend = EngineChatModel(engine)  # the chat layer: the server's prompt, grammar and parser, in this process
config = AgentConfig(max_steps=3, tool_choice="required", followup_tool_choice="none", parallel_tool_calls=False,
                     sampling=SamplingConfig(max_new_tokens=ANSWER_TOKENS + 40))
start = time.perf_counter()
run = Agent(backend, small, config).run("What is 12 + 30?")
show("seconds", f"{time.perf_counter() - start:.1f}")
for step in run.steps:
    for call in step.message.get("tool_calls") or []:
        show(f"step {step.index} call", f"{call['function']['name']}({call['function']['arguments']})")
    for item in step.results:
        show(f"step {step.index} result", item.content)
show("answer", run.answer)
made = [ToolCall.from_openai(c) for s in run.steps for c in s.message.get("tool_calls") or []]
check("the model called a tool in its first turn", len(made) >= 1)
check("every call matched its tool's schema",
      all(jsonschema.Draft202012Validator(small.get(c.name).parameters).is_valid(c.arguments) for c in made))
check("the loop ended with a text answer", run.stopped == "answer" and len(run.answer) > 0)
tool_results = [item.content for s in run.steps for item in s.results if item.ok]
check("the calculator worked it out: 12 + 30 = 42", any(json.loads(r).get("result") == 42 for r in tool_results), tool_results)

# %% [markdown]
# ## 5. Streaming a call: OpenAI deltas as the text arrives
# The streaming parser turns text pieces into `delta.tool_calls` items: the
# first carries the index, id and function name, the next ones argument
# fragments. Added up, they give exactly the call parsed from the whole text.

# %%
section("5. Streamed tool-call deltas")
messages = [{"role": "user", "content": "Convert 250 US dollars to euros."}]
constraint = tool_call_constraint(small, "required", parallel_tool_calls=False)
parser = StreamingToolParser("hermes", tool_names=small.names())
events, pieces = [], []
for piece in (e.text for e in engine.stream(messages, max_new_tokens=60, tools=small, constraint=constraint) if e.text):
    pieces.append(piece)
    for event in parser.feed(piece):
        events.append(event)
        if isinstance(event, ToolCallDelta):
            print("  delta.tool_calls:", json.dumps([event.to_openai()]))
events += parser.finish()
streamed = accumulate(events)
whole = HERMES.parse("".join(pieces), tool_names=small.names())
deltas = [e for e in events if isinstance(e, ToolCallDelta)]
check("the first delta carries the id and the function name", deltas[0].id is not None and deltas[0].name is not None)
check("the arguments arrived in several fragments", len(deltas) > 2, f"{len(deltas)} deltas")
check("the deltas add up to the call parsed from the whole text",
      [(c.name, c.arguments_json) for c in streamed.calls] == [(c.name, c.arguments_json) for c in whole.calls] and len(whole.calls) == 1)

# %%
engine.close()
done()
