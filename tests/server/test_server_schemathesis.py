"""Property-based requests generated from /openapi.json: none may get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

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


def test_no_server_errors(live):
    from hypothesis import given

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
            case.call_and_validate(checks=[not_a_server_error], timeout=60)

        check()
    # The generated requests must also reach the model, not only the validators.
    import httpx

    metrics = httpx.get(live.url + "/metrics").text
    assert 'llm_deeper_requests_total{route="/v1/chat/completions",status="200"}' in metrics
