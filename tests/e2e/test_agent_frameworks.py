"""Agent frameworks users already have, against our server over a socket: each completes a tool loop.

LangChain (`langchain-openai`, `bind_tools`, streamed and not), the OpenAI
Agents SDK (`OpenAIChatCompletionsModel`) and Pydantic AI (`OpenAIChatModel`)
each send a request with tools, read our tool call, run the tool and send its
result back in their own message shapes, and get the answer turn.

A tiny random model cannot decide to call a tool, so the first turn is forced
the way each framework forces one (`tool_choice`), and our grammar makes the
call well-formed; the tool's one parameter is an enum so the call has a fixed
length. What is under test is the wire protocol each framework speaks (tool
schemas in, `tool_calls` out whole and as stream deltas, `tool` messages
back, strict schemas, their defaults and extras), which is the same with the
real model.
"""

from __future__ import annotations

from typing import Literal

import pytest

from llm_deeper.inference.engine import Engine
from llm_deeper.serve.app import create_app
from llm_deeper.serve.background import BackgroundServer

City = Literal["Paris", "Tokyo"]
MAX_TOKENS = 128  # room for the forced call (a byte tokenizer: one token a character): <tool_call>{"name":"get_weather","arguments":{"city":"Tokyo"}}</tool_call>


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from llm_deeper.models.tiny import save_tiny_model

    folder = save_tiny_model(tmp_path_factory.mktemp("tiny-frameworks"), arch="llama", context=2048)  # the byte tokenizer makes tool prompts long
    engine = Engine.load(str(folder), max_batch=2, max_queue=8)
    with BackgroundServer(create_app(engine, default_max_tokens=16)) as srv:
        srv.model = engine.name
        yield srv
    engine.close()


def weather(city: str) -> str:
    return f"sunny, 21 °C in {city}"


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "streamed"])
def test_langchain_bind_tools_loop(server, streaming):
    pytest.importorskip("langchain_openai")
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: City) -> str:
        """The current weather in a city."""
        return weather(city)

    llm = ChatOpenAI(model=server.model, base_url=server.url + "/v1", api_key="unused", max_retries=0, temperature=0,
                     max_tokens=MAX_TOKENS, streaming=streaming)
    messages = [HumanMessage("What's the weather in Paris?")]
    forced = llm.bind_tools([get_weather], tool_choice="get_weather")
    if streaming:
        chunks = list(forced.stream(messages))
        assert len(chunks) > 2  # really streamed: the call arrives as deltas
        call_message = chunks[0]
        for chunk in chunks[1:]:
            call_message = call_message + chunk
    else:
        call_message = forced.invoke(messages)
    assert [call["name"] for call in call_message.tool_calls] == ["get_weather"]
    assert call_message.tool_calls[0]["args"]["city"] in ("Paris", "Tokyo") and call_message.tool_calls[0]["id"]
    result = get_weather.invoke(call_message.tool_calls[0])  # LangChain runs the tool and builds the ToolMessage
    assert isinstance(result, ToolMessage) and result.content.startswith("sunny")
    answer = llm.bind_tools([get_weather], tool_choice="none").invoke(messages + [call_message, result])
    assert isinstance(answer.content, str) and answer.content and not answer.tool_calls


def test_openai_agents_sdk_loop(server):
    pytest.importorskip("agents")
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)  # offline: no trace upload
    calls = []

    @function_tool
    def get_weather(city: City) -> str:
        """The current weather in a city."""
        calls.append(city)
        return weather(city)

    client = AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    agent = Agent(name="weather", instructions="Use the tools, then answer.", tools=[get_weather],
                  model=OpenAIChatCompletionsModel(model=server.model, openai_client=client),
                  # "required" on the first turn; the SDK resets it after a tool ran (reset_tool_choice), so turn 2 answers.
                  # Sampled, seeded: greedy decoding of random weights can repeat a special token (no text at all).
                  model_settings=ModelSettings(tool_choice="required", max_tokens=MAX_TOKENS, temperature=1.0, extra_args={"seed": 0}))
    result = Runner.run_sync(agent, "What's the weather in Tokyo?", max_turns=4)
    assert len(calls) == 1 and calls[0] in ("Paris", "Tokyo")  # the SDK parsed our call and ran its function (strict schema)
    kinds = [item.type for item in result.new_items]
    assert kinds[:2] == ["tool_call_item", "tool_call_output_item"] and kinds[-1] == "message_output_item"
    assert isinstance(result.final_output, str) and result.final_output


def test_pydantic_ai_loop(server):
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    class CallFirst(AbstractCapability):
        """Force the weather call on the first step, then let the model answer."""

        def get_model_settings(self):
            return lambda ctx: {"tool_choice": ["get_weather"] if ctx.run_step == 1 else "none"}

    calls = []
    model = OpenAIChatModel(server.model, provider=OpenAIProvider(base_url=server.url + "/v1", api_key="unused"))
    agent = Agent(model, capabilities=[CallFirst()], model_settings={"max_tokens": MAX_TOKENS, "temperature": 1.0, "seed": 0})

    @agent.tool_plain
    def get_weather(city: City) -> str:
        """The current weather in a city."""
        calls.append(city)
        return weather(city)

    result = agent.run_sync("What's the weather in Paris?")
    assert len(calls) == 1 and calls[0] in ("Paris", "Tokyo")
    parts = [type(part).__name__ for message in result.all_messages() for part in message.parts]
    assert "ToolCallPart" in parts and "ToolReturnPart" in parts and parts[-1] == "TextPart"
    assert isinstance(result.output, str) and result.output
