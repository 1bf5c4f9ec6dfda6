"""Property-based requests generated from /openapi.json, with every schemathesis check.

No 5xx, and the description says what the server does: each status and
content type documented, schema-valid requests accepted, schema-violating
ones refused. The one allowance: a 400 for a rule JSON Schema cannot state
(listed in the 400's description: tool_choice vs tools, the history's call
arguments, context and capacity, echo with stream) is not counted as
"schema-valid request rejected".
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance

from llm_deeper.inference.engine import Engine
from llm_deeper.serve.app import create_app
from llm_deeper.serve.background import BackgroundServer


@pytest.fixture(scope="module")
def live(tiny_llama_dir):
    # Short default replies and a small queue keep generated requests cheap (429 is an allowed answer).
    engine = Engine.load(str(tiny_llama_dir), max_batch=4, max_queue=8)
    with BackgroundServer(create_app(engine, default_max_tokens=4)) as srv:
        yield srv
    engine.close()


CROSS_FIELD_PARAMS = {"tools", "tool_choice", "messages", "echo", "max_tokens", "n", "prompt", "response_format"}


def cross_field_refusal(response) -> bool:
    """A 400 for one of the rules the 400's description lists (the schema cannot express them)."""
    if response.status_code != 400:
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return error.get("param") in CROSS_FIELD_PARAMS or error.get("code") in ("context_length_exceeded", "exceeds_capacity", "invalid_tools")


def test_every_check_passes(live):
    from hypothesis import given

    load_all_checks()
    checks = CHECKS.get_all()
    assert len(checks) > 10 and positive_data_acceptance in checks

    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"}
    for operation in operations:

        @settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def check(case):
            # Cap the reply lengths the generator picks so the test stays fast (invalid values still come through).
            if isinstance(case.body, dict) and isinstance(case.body.get("max_tokens"), int) and 0 < case.body["max_tokens"] <= 1_000_000:
                case.body["max_tokens"] = min(case.body["max_tokens"], 8)
            response = case.call(timeout=60)
            excluded = [positive_data_acceptance] if cross_field_refusal(response) else []
            case.validate_response(response, checks=checks, excluded_checks=excluded)

        check()
    # The generated requests must also reach the model, not only the validators.
    import httpx

    metrics = httpx.get(live.url + "/metrics").text
    assert 'llm_deeper_requests_total{route="/v1/chat/completions",status="200"}' in metrics
