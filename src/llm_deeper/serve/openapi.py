"""/openapi.json that says what the server does: every status and content type each route answers with.

FastAPI documents a 200 and a 422 for each body route. This server answers
422 never (a bad body is a 400 in the OpenAI error shape, see errors.py),
but 400, 401, 404, 413, 429 and 503 with that shape, and streams as
server-sent events. Clients generated from the description, and fuzzers
such as schemathesis, take it at its word, so it is written out here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}


@dataclass(frozen=True)
class CrossFieldRule:
    """A rule on a request that JSON Schema cannot state (it relates two fields, or the prompt's tokens to the model).

    A schema-valid request that breaks one gets a 400 with this `error.param` and `error.code`, as OpenAI and vLLM
    answer (vLLM also returns 400 for an unknown tool_choice name and for prompt + max_tokens past max_model_len).
    The list is served machine-readable in the 400's `x-cross-field-rules`, so a fuzzer can tell such a refusal from a
    validator stricter than the schema (tools/schemathesis_hooks.py).
    """

    rule: str  # what the request must satisfy, in words
    params: tuple[str, ...]  # the error.param values of the 400 that refuses it
    code: str | None  # its error.code; None: any code with one of those params


def refused_by_rule(rules: list[dict], status: int, body) -> bool:
    """Whether a response is the 400 of one of `rules` (as served in `x-cross-field-rules`)."""
    try:
        error = body["error"]
        param, code = error.get("param"), error.get("code")
    except (KeyError, TypeError, AttributeError):
        return False
    return status == 400 and any(param in rule["param"] and rule["code"] in (None, code) for rule in rules)


CROSS_FIELD_RULES = (
    CrossFieldRule("tool_choice names a tool in tools", ("tool_choice",), "invalid_tools"),
    CrossFieldRule("each tool's parameters is a JSON Schema within the grammar limits (64 KiB, 500 properties, depth 16)",
                   ("tools",), "invalid_tools"),
    CrossFieldRule("tool-call arguments in the history are a JSON object, and the chat template accepts the conversation",
                   ("messages",), None),
    CrossFieldRule("a json_schema response_format carries a schema within the grammar limits", ("response_format",), None),
    CrossFieldRule("the prompt plus max_tokens fit the model's context", ("messages", "prompt", "max_tokens"), "context_length_exceeded"),
    CrossFieldRule("n choices (times the prompts) fit the server's running plus waiting slots", ("n", "prompt"), "exceeds_capacity"),
    CrossFieldRule("echo is not streamed", ("echo",), None),
)
WHY = {
    400: ("Invalid request: error.param names the field (or a Host header this server does not answer to). Besides the schema, "
          "rules it cannot state (x-cross-field-rules): " + "; ".join(r.rule for r in CROSS_FIELD_RULES)),
    401: "Missing or wrong API key (a server started with --api-key)",
    404: "No model of that name (see /v1/models)",
    413: "The request body is larger than the server's limit (--max-request-bytes)",
    429: "The server's queue is full; retry later",
    500: "A bug in the server (the detail is in its log)",
    503: "The server is shutting down; send the request to another instance",
}
GENERATION = (400, 401, 404, 413, 429, 500, 503)  # chat and text completions
STATUSES = {
    ("/v1/chat/completions", "post"): GENERATION,
    ("/v1/completions", "post"): GENERATION,
    ("/v1/models", "get"): (400, 401, 500, 503),
    ("/health", "get"): (400, 500),
    ("/metrics", "get"): (400, 500),
}
STREAM = {"text/event-stream": {"schema": {  # one event
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}},
    "description": ("With stream: true, server-sent events whose data is a chunk (chat.completion.chunk or text_completion JSON), "
                    "ended by `data: [DONE]`; an error after the stream started comes as `data: {\"error\": {...}}`.")}}}


def install(app: FastAPI, vocab_size: int, context_length: int) -> None:
    """Make `app.openapi()` (served at /openapi.json and /docs) describe the statuses and content types above."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            describe(schema, vocab_size, context_length)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def describe(schema: dict, vocab_size: int, context_length: int) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in STATUSES.get((path, method), (400, 500)):
                responses[str(status)] = {"description": WHY[status],
                                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            responses["400"]["x-cross-field-rules"] = [{"rule": r.rule, "param": list(r.params), "code": r.code} for r in CROSS_FIELD_RULES]
            if (path, method) in (("/v1/chat/completions", "post"), ("/v1/completions", "post")):
                responses["200"].setdefault("content", {}).update(STREAM)
    _limit_token_ids(components.get("CompletionRequest", {}), vocab_size)
    for request in ("ChatCompletionRequest", "CompletionRequest"):  # a reply never outgrows the context (the prompt needs ≥ 1 token)
        for field in ("max_tokens", "max_completion_tokens"):
            for option in components.get(request, {}).get("properties", {}).get(field, {}).get("anyOf", []):
                if option.get("type") == "integer":
                    option["maximum"] = min(option.get("maximum", context_length), context_length - 1)


def _limit_token_ids(request: dict, vocab_size: int) -> None:
    """A prompt given as token ids must hold ids of this model's vocabulary (others are a 400)."""

    def visit(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer":
                node["maximum"] = vocab_size - 1
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(request.get("properties", {}).get("prompt", {}))
