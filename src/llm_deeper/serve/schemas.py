"""OpenAI request bodies as pydantic models (they also produce /openapi.json).

Fields the server does not use are accepted and ignored, as OpenAI-compatible
servers do, so any client library works. Ranges follow OpenAI's documentation;
a value outside them is a 400 with the parameter named. Rules that look at
one request alone are checked here; rules that need the model (context
length, tool schemas compiled to grammars) are checked by the endpoints.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from ..inference.stops import MAX_STOP_CHARS, MAX_STOPS, check_stops

MAX_N = 16  # choices per request: each is a full generation
StopString = Annotated[str, Field(max_length=MAX_STOP_CHARS)]  # limits and why: inference/stops.py
# JSON booleans only: `"echo": 0` is a 400, as /openapi.json says, not read as false. (Integers stay lax:
# in JSON Schema 3.0 is an integer, and pydantic's lax int accepts exactly that.)
Flag = StrictBool


def _not_a_boolean(value):
    """Numbers (integers: 3 or 3.0, as JSON Schema reads them) are never true/false, which lax parsing reads as 1/0."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


TokenId = Annotated[int, Field(ge=0)]  # /openapi.json adds the model's largest id (serve/openapi.py); booleans refused below


class Lenient(BaseModel):
    """Ignore unknown fields (clients send vendor extras)."""

    model_config = ConfigDict(extra="ignore")


class TextPart(Lenient):
    type: Literal["text"] = "text"
    text: str


class FunctionCall(Lenient):
    name: str
    arguments: str = "{}"


class ToolCall(Lenient):
    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[TextPart], None] = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The content as one string (text parts joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(Lenient):
    include_usage: Flag = False


class JsonSchemaSpec(Lenient):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: Flag | None = None


class ResponseFormat(Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class FunctionSpec(Lenient):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: Flag | None = None


class ToolSpec(Lenient):
    type: Literal["function"] = "function"
    function: FunctionSpec


class NamedFunction(Lenient):
    name: str


class NamedToolChoice(Lenient):
    type: Literal["function"] = "function"
    function: NamedFunction


class SamplingFields(Lenient):
    """Settings shared by chat and text completions."""

    model: str | None = Field(default=None, description="A name from /v1/models (default: the base model).")
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=-1, le=1_000_000, description="vLLM extension; -1 or 0 = off.")
    n: int = Field(default=1, ge=1, le=MAX_N)
    stop: Union[StopString, Annotated[list[StopString], Field(max_length=MAX_STOPS)], None] = Field(
        default=None, description=f"Up to {MAX_STOPS} strings of at most {MAX_STOP_CHARS} characters (OpenAI: 4); the reply ends before the first.")
    seed: int | None = Field(default=None, ge=0, description="Any size; used modulo 2**63 (a JSON reader rounds 2**63-1 up to 2**63).")
    stream: Flag = False
    stream_options: StreamOptions | None = None
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    repetition_penalty: float = Field(default=1.0, ge=0.01, le=10.0, description="transformers-style extension")
    ignore_eos: Flag = Field(default=False, description="vLLM extension: keep going past EOS")
    user: str | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_limits(cls, value):
        """One clear message for too many or too long stops (the union's own errors name each branch)."""
        stops = [value] if isinstance(value, str) else value
        if isinstance(stops, list) and all(isinstance(s, str) for s in stops):
            check_stops(stops)
        return value

    _numbers = field_validator("max_tokens", "top_k", "n", "seed", "temperature", "top_p", "presence_penalty", "frequency_penalty",
                               "repetition_penalty", mode="before")(_not_a_boolean)

    def stop_list(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]

    def include_usage(self) -> bool:
        """A streamed reply ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    logprobs: Flag = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: Union[Literal["none", "auto", "required"], NamedToolChoice, None] = None
    parallel_tool_calls: Flag | None = None

    _chat_integers = field_validator("max_completion_tokens", "top_logprobs", mode="before")(_not_a_boolean)

    @field_validator("response_format")
    @classmethod
    def _schema_given(cls, value: ResponseFormat | None) -> ResponseFormat | None:
        if value is not None and value.type == "json_schema" and (value.json_schema is None or value.json_schema.schema_ is None):
            raise ValueError("json_schema needs {'json_schema': {'name': ..., 'schema': {...}}}")
        if value is not None and value.json_schema is not None and value.json_schema.schema_ is not None:
            from ..errors import UserError
            from ..tools.openai_spec import check_refs

            try:
                check_refs(value.json_schema.schema_, "json_schema.schema")
            except UserError as exc:
                raise ValueError(str(exc)) from None
        return value

    def requested_max_tokens(self) -> int | None:
        """`max_completion_tokens` (the new name) wins over `max_tokens`."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(SamplingFields):
    prompt: Union[Annotated[str, Field(min_length=1)], Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)],
                  Annotated[list[TokenId], Field(min_length=1)], Annotated[list[Annotated[list[TokenId], Field(min_length=1)]], Field(min_length=1)]]
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: Flag = False
    suffix: str | None = None

    _completion_integers = field_validator("logprobs", mode="before")(_not_a_boolean)

    @field_validator("prompt", mode="before")
    @classmethod
    def _not_empty(cls, value):
        """One clear message for an empty prompt (the union's own errors name each branch)."""
        if not isinstance(value, (str, list)):
            return value
        empty = len(value) == 0 or any(isinstance(part, (str, list)) and len(part) == 0 for part in value if not isinstance(value, str))
        if empty:
            raise ValueError("prompt must not be empty")
        if not isinstance(value, str) and any(isinstance(x, bool) for part in value for x in (part if isinstance(part, list) else [part])):
            raise ValueError("token ids are integers, not booleans")
        return value

    @field_validator("echo")
    @classmethod
    def _echo_not_streamed(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("stream"):
            raise ValueError("echo is not supported together with stream")
        return value

    def prompts(self) -> list:
        """OpenAI allows a string, a list of strings, token ids, or a list of token-id lists: always a list of prompts here."""
        prompt = self.prompt
        if isinstance(prompt, str) or all(isinstance(p, int) for p in prompt):
            return [prompt]
        return list(prompt)
