"""schemathesis hooks: a 400 for a rule the description lists in `x-cross-field-rules` is not "valid data rejected".

    PYTHONPATH=tools SCHEMATHESIS_HOOKS=schemathesis_hooks \\
        schemathesis run http://127.0.0.1:PORT/openapi.json --checks all -n 40 --request-timeout 60

JSON Schema cannot relate two fields (tool_choice must name one of tools) or a
prompt's tokens to the model's context, so a generated request can be
schema-valid and still get the 400 that OpenAI and vLLM give for it. The
server serves those rules, machine-readable, in each operation's 400 response
(`llm_deeper.serve.openapi.CROSS_FIELD_RULES`). `filter_failure` reads them
from the served description, not from this checkout, and drops a "positive
data rejected" failure only when the response is a 400 naming one of them; any
other refusal of schema-valid data still fails.

`before_call` keeps a run to minutes: a reply length within the schema's
maximum is cut to REPLY_TOKENS (the generator likes values in the thousands,
~20 tokens a second each on 2 cores; past the client's 10 s timeout and the
10 s limit of the response-time check). Values past the maximum are sent as
generated. A long generated prompt still takes seconds to prefill on a
busy machine: hence the 60 s request timeout above. tests/server/test_server_schemathesis.py loads this file too.
"""

from __future__ import annotations

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData


REPLY_TOKENS = 8  # what a fuzzed request may generate at most: enough to reach the model, not enough to stall the run
REPLY_FIELDS = ("max_tokens", "max_completion_tokens")


def documented_rules(case) -> list[dict]:
    """The operation's `x-cross-field-rules`, as the server described them."""
    responses = (case.operation.definition.raw or {}).get("responses", {})
    return responses.get("400", {}).get("x-cross-field-rules", [])


@schemathesis.hook
def filter_failure(ctx, failure, case, response) -> bool:
    """Keep every failure except a schema-valid request refused by a documented cross-field rule."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return True
    from llm_deeper.serve.openapi import refused_by_rule

    try:
        body = response.json()
    except ValueError:
        return True
    return not refused_by_rule(documented_rules(case), response.status_code, body)


def reply_limit(case, field: str) -> int | None:
    """The schema's `maximum` for a reply-length field of this operation's request body (None: none stated)."""
    ref = (case.operation.definition.raw.get("requestBody", {}).get("content", {}).get("application/json", {})
           .get("schema", {}).get("$ref", ""))
    request = case.operation.schema.raw_schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
    options = request.get("properties", {}).get(field, {}).get("anyOf", [])
    return next((o.get("maximum") for o in options if o.get("type") == "integer"), None)


@schemathesis.hook
def before_call(ctx, case, **kwargs) -> None:
    """Cut a reply length the schema allows to REPLY_TOKENS, in every generated case.

    A value past the schema's maximum (or of the wrong type) is left as generated: it must be refused. A negative
    case that breaks another field keeps that break; only its reply length shrinks.
    """
    if case.meta is None or not isinstance(case.body, dict):  # a hand-made case is sent as is
        return
    for field in REPLY_FIELDS:
        value, limit = case.body.get(field), reply_limit(case, field)
        integral = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
        if integral and limit is not None and REPLY_TOKENS < value <= limit:  # 5000.0 is an integer to JSON Schema too
            case.body[field] = REPLY_TOKENS
