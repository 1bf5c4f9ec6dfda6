"""BFCL: our AST match gives BFCL's own checker's verdicts; its schemas become valid tools; `eval bfcl` runs."""

from __future__ import annotations

import copy
import importlib
import json
import sys
import types

import pytest
from conftest import run_cli

from llm_deeper.evals.bfcl import (CATEGORIES, LIVE_CATEGORIES, BfclItem, check_item, load_category, openai_tools, parse_categories,
                                   served_name)

AST = ("simple_python", "multiple", "parallel", "parallel_multiple")


@pytest.fixture(scope="module")
def bfcl_checker():
    """BFCL's own `ast_checker`, imported with its model table stubbed (the real one imports every vendor SDK)."""
    stub = types.ModuleType("bfcl_eval.constants.model_config")
    stub.MODEL_CONFIG_MAPPING = {"fc/model": types.SimpleNamespace(underscore_to_dot=True)}
    saved = sys.modules.get(stub.__name__)
    sys.modules[stub.__name__] = stub
    try:
        checker = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
        language = importlib.import_module("bfcl_eval.constants.enums").Language.PYTHON
    finally:
        if saved is None:
            del sys.modules[stub.__name__]
        else:
            sys.modules[stub.__name__] = saved

    def verdict(item: BfclItem, calls: list[tuple[str, dict]]) -> bool:
        output = [{name: arguments} for name, arguments in calls]
        return bool(checker.ast_checker(copy.deepcopy(item.functions), output, copy.deepcopy(item.answers), language, item.category, "fc_model")["valid"])

    return verdict


def concrete(value):
    """An allowed value as a model would write it: a dict answer holds lists of allowed values per key."""
    if isinstance(value, dict):
        return {k: concrete(v[0]) for k, v in value.items() if isinstance(v, list) and v and v[0] != ""}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [concrete(v) for v in value]
    return value


def first_choice(answer: dict) -> tuple[str, dict]:
    """The call built from each parameter's first allowed value (optional ones left out when "" comes first)."""
    name, params = next(iter(answer.items()))
    return served_name(name), {p: concrete(allowed[0]) for p, allowed in params.items() if allowed and allowed[0] != ""}


def variants(item: BfclItem, rng) -> list[list[tuple[str, dict]]]:
    """Right answers and the mistakes models make: wrong value, type, name, count, order, extra or missing parameter."""
    right = [first_choice(a) for a in item.answers]
    out = [right, list(reversed(right)), [], right + right[:1], right[:-1]]
    for index, (name, arguments) in enumerate(right):
        for param, value in arguments.items():
            for changed in (value, str(value), [value], value + 1 if isinstance(value, (int, float)) and not isinstance(value, bool) else "zz",
                            value.upper() if isinstance(value, str) else 0.5, None):
                out.append(right[:index] + [(name, {**arguments, param: changed})] + right[index + 1:])
            out.append(right[:index] + [(name, {k: v for k, v in arguments.items() if k != param})] + right[index + 1:])
        out.append(right[:index] + [(name, {**arguments, "unexpected": 1})] + right[index + 1:])
        out.append(right[:index] + [(name + "_x", arguments)] + right[index + 1:])
        for param, allowed in next(iter(item.answers[index].values())).items():  # every allowed value, optional ones too
            for value in allowed[:3]:
                if value != "":
                    out.append(right[:index] + [(name, {**arguments, param: concrete(value)})] + right[index + 1:])
    rng.shuffle(out)
    return out[:12]


@pytest.mark.parametrize("category", AST)
def test_ast_match_agrees_with_bfcl_checker(category, bfcl_checker):
    import random

    rng = random.Random(0)
    items = load_category(category, limit=60, seed=1)
    agree = passes = total = 0
    for item in items:
        assert bfcl_checker(item, [first_choice(a) for a in item.answers]), item.id  # the answers themselves pass
        for calls in variants(item, rng):
            ours = not check_item(item, calls)
            total += 1
            passes += ours
            agree += ours == bfcl_checker(item, calls)
            assert ours == bfcl_checker(item, calls), (item.id, calls, check_item(item, calls))
    assert total > 300 and 0 < passes < total  # both verdicts exercised


def test_irrelevance_and_counts():
    item = load_category("irrelevance", limit=1)[0]
    assert not item.answers and check_item(item, []) == ""
    assert "no function fits" in check_item(item, [(served_name(item.functions[0]["name"]), {})])
    simple = load_category("simple_python", limit=1)[0]
    assert "expected 1" in check_item(simple, [])


def test_sample_is_fixed_and_categories_load():
    assert [i.id for i in load_category("multiple", limit=5, seed=3)] == [i.id for i in load_category("multiple", limit=5, seed=3)]
    assert [i.id for i in load_category("multiple", limit=5, seed=3)] != [i.id for i in load_category("multiple", limit=5, seed=4)]
    sizes = {c: len(load_category(c)) for c in CATEGORIES}
    assert sizes == {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "irrelevance": 240}
    # The live categories load by name or as 'live' (not in 'all'); live irrelevance has no answers, and a call fails it.
    assert parse_categories("live") == LIVE_CATEGORIES and parse_categories("all") == CATEGORIES
    live = {c: load_category(c, limit=3) for c in LIVE_CATEGORIES}
    assert all(len(items) == 3 and all(i.functions and i.messages for i in items) for items in live.values())
    assert all(i.answers for c in ("live_simple", "live_multiple") for i in live[c])
    unfit = live["live_irrelevance"][0]
    assert not unfit.answers and check_item(unfit, []) == "" and check_item(unfit, [("anything", {})])


def test_schemas_become_valid_tools_that_compile():
    """Python type names map to JSON schema; every tool of a sample passes our validator and compiles to a grammar."""
    from llm_deeper.models.tiny import tiny_tokenizer
    from llm_deeper.inference.constrained import grammar_cache
    from llm_deeper.chat.tool_constraint import tool_call_constraint
    from llm_deeper.tools.openai_spec import validate_tools

    tools = openai_tools([{"name": "math.hypot", "parameters": {"type": "dict", "properties": {
        "x": {"type": "float"}, "p": {"type": "tuple", "items": {"type": "integer"}}, "o": {"type": "dict", "properties": {"k": {"type": "any"}}}},
        "required": ["x"]}}])
    assert tools[0]["function"]["name"] == "math_hypot"
    props = tools[0]["function"]["parameters"]["properties"]
    assert tools[0]["function"]["parameters"]["type"] == "object"
    assert (props["x"]["type"], props["p"]["type"], props["p"]["items"]["type"], props["o"]["type"], props["o"]["properties"]["k"]["type"]) == \
        ("number", "array", "integer", "object", "string")
    tokenizer = tiny_tokenizer()
    cache = grammar_cache(tokenizer, len(tokenizer))
    for category in CATEGORIES + LIVE_CATEGORIES:
        for item in load_category(category, limit=15, seed=2):
            tools = validate_tools(openai_tools(item.functions))
            cache.compile(tool_call_constraint(tools, "required"))
            json.dumps(tools)


def test_eval_bfcl_in_process_and_base_url_agree(tmp_path, one_torch_thread):
    """Base and LoRA in-process with bootstrap table; the same base run through our server gives the same verdicts."""
    from peft import LoraConfig, get_peft_model

    from llm_deeper.evals.report import load_run
    from llm_deeper.inference.engine import Engine
    from llm_deeper.models.tiny import save_tiny_model, tiny_llama
    from llm_deeper.serve.app import create_app
    from llm_deeper.serve.background import BackgroundServer

    model = save_tiny_model(tmp_path / "tiny", arch="llama", context=8192)  # byte-level tokens: a BFCL prompt is ~2,000 of them
    adapter = tmp_path / "adapter"
    get_peft_model(tiny_llama(context=8192), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(adapter)
    common = ("--categories", "simple_python,irrelevance", "--limit", "2", "--max-new-tokens", "24")
    local = run_cli("eval", "bfcl", "--model", str(model), "--adapter", str(adapter), *common, "--tool-choice", "auto,required",
                    "--out", str(tmp_path / "local"), timeout=600, env={"OMP_NUM_THREADS": "1"})
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    runs = {name: load_run(tmp_path / "local" / name) for name in ("base-auto", "lora-auto", "base-required", "lora-required")}
    for run in runs.values():
        assert run["aggregate"]["bfcl:simple_python"]["n"] == 2 and run["aggregate"]["bfcl:irrelevance"]["n"] == 2
        assert "ci95" in run["aggregate"]["bfcl:overall"]
    required = runs["base-required"]["examples"]
    assert all(r["predicted_calls"] or r["finish_reason"] == "length" for r in required)  # required: a call, or cut by max_tokens
    table = (tmp_path / "local" / "compare.md").read_text()
    assert "bfcl:overall" in table and "lora required" in table

    engine = Engine.load(str(model), max_batch=2)
    try:
        with BackgroundServer(create_app(engine)) as server:
            remote = run_cli("eval", "bfcl", "--base-url", server.url + "/v1", "--model", engine.name, *common, "--tool-choice", "required",
                             "--out", str(tmp_path / "remote"), timeout=600, env={"OMP_NUM_THREADS": "1"})
    finally:
        engine.close()
    assert remote.returncode == 0, remote.stdout[-3000:] + remote.stderr[-3000:]
    served = load_run(next((tmp_path / "remote").glob("*/results.json")).parent)["examples"]
    assert [(r["id"], r["verdict"]) for r in served] == [(r["id"], r["verdict"]) for r in required]
    assert [[c["function"]["arguments"] for c in r["predicted_calls"]] for r in served] == \
        [[c["function"]["arguments"] for c in r["predicted_calls"]] for r in required]


def test_bad_input_is_one_line(tmp_path):
    result = run_cli("eval", "bfcl", "--categories", "simple_java", timeout=120)
    assert result.returncode == 2 and "unknown BFCL category" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("eval", "bfcl", "--tool-choice", "none", timeout=120)
    assert result.returncode == 2 and "--tool-choice" in result.stderr


@pytest.mark.slow
def test_default_model_on_a_few_bfcl_items():
    """The real model through the engine, one item per category: required always yields calls BFCL can score."""
    from llm_deeper.chat.engine_model import EngineChatModel
    from llm_deeper.evals.bfcl_run import ChatBackend, run_bfcl
    from llm_deeper.inference.engine import Engine

    items = [item for category in CATEGORIES for item in load_category(category, limit=1, seed=0)]
    engine = Engine.load("smollm2-135m-instruct", max_batch=5)
    try:
        required = run_bfcl(items, ChatBackend(EngineChatModel(engine), max_new_tokens=48), None, "required", "base required")
    finally:
        engine.close()
    for record in required.records:
        assert record["predicted_calls"] or record["finish_reason"] == "length", record
        calls = record["predicted_calls"]
        for call in calls[:-1] if record["finish_reason"] == "length" else calls:  # a call max_tokens cut is kept as served, partial
            json.loads(call["function"]["arguments"])  # the grammar made it JSON
    irrelevant = next(r for r in required.records if r["id"].startswith("irrelevance"))
    assert (irrelevant["verdict"] == "pass") == (not irrelevant["predicted_calls"])  # a call where none fits fails; a cut one cannot be read
    assert set(required.aggregates) >= {f"bfcl:{c}" for c in CATEGORIES} | {"bfcl:overall"}
