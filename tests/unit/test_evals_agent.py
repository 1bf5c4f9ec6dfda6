"""`eval agent`: held-out tasks, how answers are read, scoring through the real agent loop, the CLI."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from llm_deeper.evals.agent_run import run_agent_tasks, score_task
from llm_deeper.evals.agent_tasks import (AgentTask, clock_forms, contains_value, make_agent_tasks, numbers_in, same_call,
                                          same_number)
from llm_deeper.agent.loop import Agent, AgentConfig, ScriptedBackend
from llm_deeper.tools.builtin import default_registry


def number_task(value: float, kind: str = "calculator") -> AgentTask:
    return AgentTask("t-0", kind, 1, "What is it?", ["calculator"], [{"name": "calculator", "arguments": {"expression": "17 * 23"}}], number=value)


def test_numbers_are_read_as_a_person_writes_them():
    assert numbers_in("1,234.5 km and -3°C, H2O, 18.63.") == [(1234.5, 1), (-3.0, 0), (18.63, 2)]
    assert [n for n, _ in numbers_in("on 2026-01-15")] == [2026.0, 1.0, 15.0]  # a date's dashes are not minus signs
    for written in ("391", "391.0", "391.00", "The answer is 391."):
        assert contains_value(written, number_task(391.0)), written
    assert contains_value("about 18.63", number_task(18.6279360102))  # rounded to the digits shown
    assert contains_value("1,234.5 in total", number_task(1234.5))
    assert not contains_value("392", number_task(391.0))
    assert not contains_value("12", number_task(12.49))  # rounding the right way, but 4% off
    assert same_number(18.6, 1, 18.64)  # 18.64 to one decimal
    assert not same_number(18.7, 1, 18.64)
    assert same_number(0.04, 2, 0.0432) and not same_number(0.0, 0, 0.3)
    assert not contains_value("no number here", number_task(3.0))


def test_times_match_in_both_clocks_and_not_inside_another_time():
    task = AgentTask("t", "convert_time", 1, "q", [], [], texts=clock_forms("08:30"))
    assert contains_value("It is 08:30 in Tokyo.", task) and contains_value("That is 8:30 a.m. there", task)
    assert not contains_value("It is 18:30 in Tokyo.", task)  # "8:30" inside "18:30" is another time
    evening = AgentTask("t", "convert_time", 1, "q", [], [], texts=clock_forms("18:30"))
    assert contains_value("2026-01-15 18:30 Asia/Tokyo", evening) and contains_value("6:30 PM", evening)
    assert not contains_value("6:30 am", evening)


def test_tasks_are_held_out_fixed_by_seed_and_solvable_by_their_expected_calls():
    from llm_deeper.data.toolcalls import SCENARIOS

    tasks = make_agent_tasks(30, seed=3)
    assert [t.to_json() for t in tasks] == [t.to_json() for t in make_agent_tasks(30, seed=3)]
    assert [t.request for t in tasks] != [t.request for t in make_agent_tasks(30, seed=4)]
    assert sum(t.steps == 2 for t in tasks) == 10 and len({t.id for t in tasks}) == 30
    train_starts = {p.split("{")[0] for s in SCENARIOS for p in s.train_phrasings if p.split("{")[0]}
    registry = default_registry()
    for task in tasks:
        assert {c["name"] for c in task.expected_calls} <= set(task.tools) and len(task.tools) == len(set(task.tools))
        if task.steps == 1:  # a test phrasing, never a training one
            assert not any(task.request.startswith(start) for start in train_starts if len(start) > 12), task.request
        # Running the expected calls (the second fed by the first, as the model must) gives the value.
        last = None
        for call in task.expected_calls:
            last = registry.get(call["name"])(**call["arguments"])
        answer = json.dumps(last)
        assert contains_value(answer, task), (task.request, answer, task.value)
    assert len({t.kind for t in tasks if t.steps == 2}) >= 3 and len({t.kind for t in tasks if t.steps == 1}) >= 4


def test_calculator_calls_compare_by_value_other_calls_as_json():
    expected = {"name": "calculator", "arguments": {"expression": "9558.6 * 2"}}
    assert same_call({"name": "calculator", "arguments": {"expression": "2*9558.6"}}, expected)
    assert not same_call({"name": "calculator", "arguments": {"expression": "9558.6 + 2"}}, expected)
    assert not same_call({"name": "calculator", "arguments": {"expression": "import os"}}, expected)
    weather = {"name": "get_weather", "arguments": {"city": "Tokyo"}}
    assert same_call({"name": "get_weather", "arguments": {"city": " tokyo"}}, weather)
    assert not same_call({"name": "get_weather", "arguments": {"city": "Tokyo", "unit": "fahrenheit"}}, weather)
    units = {"name": "convert_units", "arguments": {"value": 12, "from_unit": "celsius", "to_unit": "kelvin"}}
    assert same_call({"name": "convert_units", "arguments": {"value": 12.0, "from_unit": "celsius", "to_unit": "kelvin"}}, units)


def call(name: str, arguments: dict) -> str:
    return f'<tool_call>{{"name": "{name}", "arguments": {json.dumps(arguments)}}}</tool_call>'


def run_scripted(task: AgentTask, replies: list[str], max_steps: int = 4):
    registry = default_registry()
    agent = Agent(ScriptedBackend(replies), registry.subset(task.tools), AgentConfig(max_steps=max_steps))
    return score_task(task, agent.run(task.request), 0.5)


def two_step_task() -> AgentTask:
    return next(t for t in make_agent_tasks(30, seed=0) if t.kind == "round_trip")


def test_a_two_step_task_scored_through_the_real_loop_and_tools():
    task = two_step_task()
    first, second = task.expected_calls
    value = f"{task.number:.1f}"
    good = run_scripted(task, [call(first["name"], first["arguments"]), call("calculator", {"expression": f"2 * {second['arguments']['expression'].split()[0]}"}),
                               f"The round trip is {value} km."])
    assert good["verdict"] == "pass" and good["turns"] == 3
    assert good["scores"]["agent:success"] == (1.0, 1.0) and good["scores"]["agent:success 2-step"] == (1.0, 1.0)
    assert good["scores"]["agent:success 1-step"][1] == 0.0  # not a one-step task
    assert good["scores"]["agent:right tools"] == (1.0, 1.0) and good["scores"]["agent:exact arguments"] == (1.0, 2.0)
    # One call, then an answer that gives the one-way distance: the right first tool, but no success.
    one_way = first["arguments"]
    half = run_scripted(task, [call(first["name"], one_way), f"It is {task.number / 2:.1f} km one way."])
    assert half["scores"]["agent:success"] == (0.0, 1.0) and half["scores"]["agent:right tools"] == (0.0, 1.0)
    assert half["scores"]["agent:exact arguments"] == (0.5, 2.0) and half["verdict"].startswith("answer lacks")
    # Calling forever: the step limit ends it, with no answer.
    looping = run_scripted(task, [call(first["name"], one_way)] * 3, max_steps=3)
    assert looping["scores"]["agent:hit step limit"] == (1.0, 1.0) and looping["verdict"] == "no answer: max_steps"
    # The value without any tool still counts as success (the answer is what is scored), and says so.
    guessed = run_scripted(task, [f"About {value} km."])
    assert guessed["scores"]["agent:success"] == (1.0, 1.0) and guessed["scores"]["agent:no tool called"] == (1.0, 1.0)


def test_an_answer_with_tool_markup_is_no_success():
    """Issue 23: the adapter answered by repeating `<tool_response>` markup, which held the value and counted."""
    task = two_step_task()
    echoed = run_scripted(task, [f'<tool_response>{{"name":"calculator","content":{{"result":{task.number:.1f}}}}}</tool_response> {task.number:.1f} km'])
    assert echoed["scores"]["agent:success"] == (0.0, 1.0) and "markup" in echoed["verdict"]


class CutBackend(ScriptedBackend):
    """Scripted replies, the first one reported as cut by the token limit."""

    def chat(self, request):
        reply = super().chat(request)
        reply.finish_reason = "length" if len(self.seen) == 1 else reply.finish_reason
        return reply


def test_run_records_max_tokens_and_aggregates_with_intervals():
    tasks = make_agent_tasks(2, seed=1, two_step_share=0.0)
    replies = []
    for task in tasks:
        replies += [call(task.expected_calls[0]["name"], task.expected_calls[0]["arguments"]), f"Done: {task.texts[0] if task.texts else task.value}."]
    run = run_agent_tasks(tasks, CutBackend(replies), "scripted", seed=0)
    assert run.aggregates["agent:success"].value == 1.0 and run.aggregates["agent:success"].n == 2
    assert run.aggregates["agent:hit max_tokens"].value == 0.5  # the first task's first turn was cut
    assert run.records[0]["scores"]["agent:hit max_tokens"] == (1.0, 1.0)
    assert run.info["config"]["max_steps"] == 4 and "2 one-step, 0 two-step" in run.info["data"]
    low, high = run.aggregates["agent:exact arguments"].low, run.aggregates["agent:exact arguments"].high
    assert low <= run.aggregates["agent:exact arguments"].value <= high


class SolvingBackend:
    """A model that knows each task's calls and then repeats the last tool result: a perfect agent."""

    def __init__(self, tasks: list[AgentTask], answer: bool = True):
        self.plans = {t.request: t.expected_calls for t in tasks}
        self.answer = answer  # False: answers at once without any tool
        self.backend = "solver"

    def chat(self, request):
        from llm_deeper.chat import ChatReply

        messages = request.messages
        plan = self.plans[messages[0]["content"]]
        made = sum(1 for m in messages if m["role"] == "tool")
        if not self.answer:
            return ChatReply({"role": "assistant", "content": "I think it is 42."}, "stop")
        if made < len(plan):
            step = plan[made]
            return ChatReply({"role": "assistant", "content": None, "tool_calls": [
                {"id": f"c{made}", "type": "function", "function": {"name": step["name"], "arguments": json.dumps(step["arguments"])}}]}, "tool_calls")
        return ChatReply({"role": "assistant", "content": f"Here you go: {messages[-1]['content']}"}, "stop")


def test_concurrent_runs_keep_task_order_and_a_perfect_agent_scores_one():
    tasks = make_agent_tasks(6, seed=2, two_step_share=0.5)
    together = run_agent_tasks(tasks, SolvingBackend(tasks), "perfect", concurrency=3)
    alone = run_agent_tasks(tasks, SolvingBackend(tasks), "perfect", concurrency=1)
    assert [r["id"] for r in together.records] == [t.id for t in tasks] == [r["id"] for r in alone.records]
    assert [r["scores"]["agent:success"] for r in together.records] == [(1.0, 1.0)] * 6
    assert together.aggregates["agent:exact arguments"].value == 1.0 and together.aggregates["agent:right tools"].value == 1.0
    assert together.aggregates["agent:success 2-step"].n == 3 and together.info["concurrency"] == 3
    lazy = run_agent_tasks(tasks, SolvingBackend(tasks, answer=False), "lazy")
    assert lazy.aggregates["agent:success"].value == 0.0 and lazy.aggregates["agent:no tool called"].value == 1.0


def test_bad_input_is_one_line(tmp_path):
    for argv, message in ((["--tool-choice", "none"], "--tool-choice"), (["--then", "maybe"], "--then"),
                          (["--two-step-share", "2"], "--two-step-share"), (["--base-url", "http://127.0.0.1:1/v1", "--limit", "1"], "cannot reach")):
        result = run_cli("eval", "agent", *argv, timeout=120)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, (argv, result.stderr)


def test_eval_agent_cli_base_and_lora_in_process_and_through_our_server(tmp_path, one_torch_thread):
    """A tiny random model: `required` makes each first turn a real call; both runs and the table are written."""
    from peft import LoraConfig, get_peft_model

    from llm_deeper.evals.report import load_run
    from llm_deeper.inference.engine import Engine
    from llm_deeper.models.tiny import save_tiny_model, tiny_llama
    from llm_deeper.serve.app import create_app
    from llm_deeper.serve.background import BackgroundServer

    model = save_tiny_model(tmp_path / "tiny", arch="llama", context=4096)
    adapter = tmp_path / "adapter"
    get_peft_model(tiny_llama(context=4096), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(adapter)
    common = ("--limit", "2", "--max-steps", "2", "--tool-choice", "required", "--then", "none", "--max-new-tokens", "40", "--seed", "1")
    local = run_cli("eval", "agent", "--model", str(model), "--adapter", str(adapter), *common, "--out", str(tmp_path / "local"),
                    timeout=600, env={"OMP_NUM_THREADS": "1"})
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    runs = {name: load_run(tmp_path / "local" / name) for name in ("base", "lora")}
    ids = [t.id for t in make_agent_tasks(2, seed=1, two_step_share=0.33)]
    for run in runs.values():
        assert [r["id"] for r in run["examples"]] == ids
        assert run["aggregate"]["agent:success"]["n"] == 2 and len(run["aggregate"]["agent:success"]["ci95"]) == 2
        for record in run["examples"]:
            # required: the first turn is a call or is cut by the token limit; "none" then forces a text turn
            assert record["predicted_calls"] or record["scores"]["agent:hit max_tokens"][0] == 1.0 or record["stopped"] == "no_tool_call", record
            assert record["turns"] <= 2
    assert runs["lora"]["info"]["adapter"] == str(adapter) and runs["base"]["info"]["adapter"] is None
    assert "agent:success" in (tmp_path / "local" / "compare.md").read_text()

    engine = Engine.load(str(model), max_batch=1)
    try:
        with BackgroundServer(create_app(engine)) as server:
            remote = run_cli("eval", "agent", "--base-url", server.url + "/v1", "--model", engine.name, *common, "--out", str(tmp_path / "remote"),
                             timeout=600, env={"OMP_NUM_THREADS": "1"})
    finally:
        engine.close()
    assert remote.returncode == 0, remote.stdout[-3000:] + remote.stderr[-3000:]
    served = load_run(next((tmp_path / "remote").glob("*/results.json")).parent)
    assert [r["id"] for r in served["examples"]] == ids and served["info"]["backend"] == server.url + "/v1"


@pytest.mark.slow
def test_default_model_runs_agent_tasks_end_to_end():
    """The real model through the engine and the real tools: `required` makes the first turn an offered tool's call."""
    from llm_deeper.inference.engine import Engine
    from llm_deeper.chat.engine_model import EngineChatModel

    tasks = make_agent_tasks(2, seed=0, two_step_share=0.5)  # one task of each kind, decoded together
    engine = Engine.load("smollm2-135m-instruct", max_batch=2)
    try:
        run = run_agent_tasks(tasks, EngineChatModel(engine), "base", max_steps=2, tool_choice="required", then="none", max_new_tokens=48,
                              concurrency=2)
    finally:
        engine.close()
    for task, record in zip(tasks, run.records):
        first = record["predicted_calls"][0] if record["predicted_calls"] else None
        assert first is not None or record["scores"]["agent:hit max_tokens"][0] == 1.0, record
        if first is not None:
            assert first["name"] in task.tools and isinstance(first["arguments"], dict)
        cut = record["scores"]["agent:hit max_tokens"][0] == 1.0
        assert record["stopped"] in ("answer", "max_steps", "repeated_failure") or (record["stopped"] == "no_tool_call" and cut), record
        assert record["turns"] == (1 if record["stopped"] == "no_tool_call" else 2)  # "none" makes the second turn text
        assert (record["verdict"] == "pass") == bool(record["scores"]["agent:success"][0])
    assert set(run.aggregates) >= {"agent:success", "agent:right tools", "agent:exact arguments", "agent:hit max_tokens"}
