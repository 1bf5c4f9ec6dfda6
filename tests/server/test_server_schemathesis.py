"""Property-based requests generated from /openapi.json, with every schemathesis check.

No 5xx, and the description says what the server does: each status and
content type documented, schema-valid requests accepted, schema-violating
ones refused. The one allowance: a 400 for a rule JSON Schema cannot state
(served in the 400's `x-cross-field-rules`: tool_choice vs tools, the
history's call arguments, context and capacity, echo with stream) is not
counted as "schema-valid request rejected". The allowance is the hook that
schemathesis's own CLI loads (tools/schemathesis_hooks.py), so both judge alike.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from conftest import REPO
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


def load_hooks():
    """tools/schemathesis_hooks.py, as SCHEMATHESIS_HOOKS loads it for the CLI (it registers its hook on import)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("schemathesis_hooks", REPO / "tools" / "schemathesis_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hook_forgives_only_a_documented_400(live):
    """An unknown tool_choice name and prompt + max_tokens past the context are 400s (as in OpenAI and vLLM) that the
    description lists; the hook drops "valid data rejected" for those, and for nothing else."""
    import httpx

    hooks = load_hooks()
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    chat = next(r.ok() for r in schema.get_all_operations() if r.ok().path == "/v1/chat/completions")
    rules = hooks.documented_rules(chat.Case(body={}))
    described = httpx.get(live.url + "/openapi.json").json()["components"]["schemas"]["ChatCompletionRequest"]
    largest_max_tokens = next(o["maximum"] for o in described["properties"]["max_tokens"]["anyOf"] if o.get("type") == "integer")
    assert {"param": ["tool_choice"], "code": "invalid_tools"} in [{k: r[k] for k in ("param", "code")} for r in rules]
    tool = {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}
    user = [{"role": "user", "content": "hi"}]
    bodies = {
        "unknown tool": {"messages": user, "tools": [tool], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        "past the context": {"messages": user, "max_tokens": largest_max_tokens},
    }
    for what, body in bodies.items():
        case = chat.Case(body=body, media_type="application/json")
        response = case.call(timeout=60)
        assert response.status_code == 400, (what, response.text)
        failure = RejectedPositiveData(operation=chat.label, message="", status_code=400, allowed_statuses=["2xx"])
        assert hooks.filter_failure(None, failure, case, response) is False, what
    # the same failure for a 400 that no rule lists is kept
    other = chat.Case(body={"messages": user, "temperature": -5}, media_type="application/json")
    response = other.call(timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == "temperature"
    failure = RejectedPositiveData(operation=chat.label, message="", status_code=400, allowed_statuses=["2xx"])
    assert hooks.filter_failure(None, failure, other, response) is True
    assert httpx.get(live.url + "/health").status_code == 200


def test_every_check_passes(live):
    from hypothesis import given

    load_hooks()
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
            # the hooks' before_call cuts schema-valid reply lengths to 8 tokens (negative cases keep theirs)
            response = case.call(timeout=60)
            case.validate_response(response, checks=checks)

        check()
    # The generated requests must also reach the model, not only the validators.
    import httpx

    metrics = httpx.get(live.url + "/metrics").text
    assert 'llm_deeper_requests_total{route="/v1/chat/completions",status="200"}' in metrics
