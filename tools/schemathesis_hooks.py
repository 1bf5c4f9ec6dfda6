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

`before_call` keeps a run to minutes: a schema-valid reply length is cut to
REPLY_TOKENS (the generator likes values in the thousands, ~20 tokens a second
each on 2 cores; past the client's 10 s timeout). Schema-violating values are
sent as generated. A long generated prompt still takes seconds to prefill on a
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


@schemathesis.hook
def before_call(ctx, case, **kwargs) -> None:
    """Cut a schema-valid reply length to REPLY_TOKENS (negative cases keep their values: they must be refused)."""
    positive = case.meta is not None and case.meta.generation.mode.is_positive  # generated, schema-valid (a hand-made case is sent as is)
    if positive and isinstance(case.body, dict):
        for field in REPLY_FIELDS:
            value = case.body.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value > REPLY_TOKENS:
                case.body[field] = REPLY_TOKENS
