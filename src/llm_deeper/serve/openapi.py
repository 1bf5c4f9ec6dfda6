"""/openapi.json that says what the server does: every status and content type each route answers with.

FastAPI documents a 200 and a 422 for each body route. This server answers
422 never (a bad body is a 400 in the OpenAI error shape, see errors.py),
but 400, 401, 404, 413, 429 and 503 with that shape, and streams as
server-sent events. Clients generated from the description, and fuzzers
such as schemathesis, take it at its word, so it is written out here.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}
WHY = {
    400: ("Invalid request: error.param names the field (or a Host header this server does not answer to). Besides the schema, "
          "rules it cannot state: tool_choice names a tool in tools; tool-call arguments in the history are a JSON object; "
          "a json_schema response_format carries a schema; "
          "the prompt plus max_tokens fit the model's context; n choices fit the server; echo is not streamed"),
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
