"""The synthetic tool-calling data set: held-out split, server rendering, real tool results."""

from __future__ import annotations

import json

from llm_deeper.data.sft import read_jsonl
from llm_deeper.data.toolcalls import NO_CALL_KINDS, SCENARIOS, make_tool_dataset, with_twins, write_tool_dataset


def user_text(example) -> str:
    return next(m["content"] for m in example.messages if m["role"] == "user")


def test_deterministic_and_well_formed(tmp_path):
    train_path, test_path = write_tool_dataset(tmp_path, n_train=120, n_test=20, seed=3)
    again = write_tool_dataset(tmp_path / "again", n_train=120, n_test=20, seed=3)
    assert train_path.read_bytes() == again[0].read_bytes()
    train = read_jsonl(train_path)  # our own reader accepts every line
    tool_rows = [e for e in train if e.meta["kind"] == "call"]
    assert len(tool_rows) > 10
    for example in tool_rows:
        call = example.messages[1]["tool_calls"][0]
        offered = [t["function"]["name"] for t in example.tools]
        assert call["function"]["name"] == example.meta["expected_tool"] in offered and len(offered) == 3
        result = json.loads(example.messages[2]["content"])  # the tool really ran
        assert example.messages[2]["tool_call_id"] == call["id"] and "error" not in result


def test_test_split_holds_out_phrasings_and_values():
    train, test = make_tool_dataset(n_train=300, n_test=80, seed=0)
    train_questions = {user_text(e) for e in train}
    assert not train_questions & {user_text(e) for e in test}
    test_templates = {p for s in SCENARIOS for p in s.test_phrasings}
    train_templates = {p for s in SCENARIOS for p in s.train_phrasings}
    assert not test_templates & train_templates
    def arguments(examples):
        return {c["function"]["arguments"] for e in examples for m in e.messages for c in m.get("tool_calls") or []
                if c["function"]["name"] != "get_current_time"}

    assert not arguments(train) & arguments(test)
    train_answers = {m["content"] for e in train for m in e.messages if m["role"] == "assistant" and m["content"] and e.meta["kind"] in ("small_talk", "general")}
    test_prompts = {user_text(e) for e in test if e.meta["kind"] in ("small_talk", "general")}
    assert test_prompts and not test_prompts & {user_text(e) for e in train}
    assert train_answers


def test_rendered_with_the_server_renderer_and_trained_on_the_call():
    from llm_deeper.data.sft_render import IGNORE, tokenize_example
    from llm_deeper.models.tiny import tiny_tokenizer
    from llm_deeper.tools.formats import HERMES
    from llm_deeper.tools.render import chat_prompt

    tokenizer = tiny_tokenizer()
    example = next(e for e in make_tool_dataset(20, 1, seed=1)[0] if e.meta["expected_tool"])
    item = tokenize_example(tokenizer, example)
    text = tokenizer.decode(item.input_ids)
    prompt = chat_prompt(tokenizer, example.messages[:1], example.tools)  # what the server sends the model
    assert text.startswith(prompt)
    trained = tokenizer.decode([t for t, label in zip(item.input_ids, item.labels) if label != IGNORE])
    first_turn = trained.split("<|im_end|>")[0]
    calls = HERMES.parse(first_turn).calls
    assert [c.name for c in calls] == [example.meta["expected_tool"]]
    assert "<tool_response>" in text and "<tool_response>" not in trained  # tool output is read, not learned


def test_mix_teaches_restraint_parallel_calls_and_the_whole_loop():
    """Over 4 in 10 conversations need no call; near misses withhold the fitting tool; parallel, chained and follow-up turns."""
    from collections import Counter

    train, _ = make_tool_dataset(n_train=400, n_test=10, seed=0, distractors=1)
    kinds = Counter(e.meta["kind"] for e in train)
    no_call = sum(kinds[k] for k in NO_CALL_KINDS) / len(train)
    assert 0.33 < no_call < 0.47 and kinds["parallel"] > 12 and kinds["thanks"] > 8 and kinds["chain"] > 20 and kinds["gen_call"] > 80
    for example in train:
        offered = [t["function"]["name"] for t in example.tools]
        calls = [c for m in example.messages for c in m.get("tool_calls") or []]
        if example.meta["kind"] in NO_CALL_KINDS:
            assert not calls and example.meta["expected_tool"] is None
        if example.meta["kind"] == "near_miss":
            assert example.meta["withheld_tool"] not in offered and "can't" in example.messages[-1]["content"]
        if example.meta["kind"] == "parallel":
            first = example.messages[1]["tool_calls"]
            assert len(first) == 2 and first[0]["function"]["arguments"] != first[1]["function"]["arguments"]
            results = [m for m in example.messages if m["role"] == "tool"]
            assert [r["tool_call_id"] for r in results] == [c["id"] for c in first]
            for call in first:  # arguments copied from the user's words
                for value in json.loads(call["function"]["arguments"]).values():
                    assert str(value) in user_text(example)
        if example.meta["kind"] == "thanks":
            assert [m["role"] for m in example.messages] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
        if example.meta["kind"] == "chain":
            assert [m["role"] for m in example.messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
            first, second = (json.loads(m["tool_calls"][0]["function"]["arguments"]) for m in example.messages[1:4:2])
            assert {m["tool_calls"][0]["function"]["name"] for m in example.messages[1:4:2]} < set(offered) and len(offered) == 4  # as many distractors as eval agent
            result = json.loads(example.messages[2]["content"])
            numbers = {str(v) for v in result.values() if isinstance(v, (int, float))}
            assert any(n in str(v) for n in numbers for v in second.values())  # the second call reuses the first result
            assert str(json.loads(example.messages[4]["content"])["result"]) in example.messages[5]["content"]  # the answer states it
    near = [e for e in train if e.meta["kind"] == "near_miss" and e.meta["withheld_tool"] == "convert_units"]
    assert near and all({"convert_currency", "convert_time"} & {t["function"]["name"] for t in e.tools} for e in near)  # similar names offered


def test_held_out_eval_scores_the_right_turn():
    """The eval reads the turn after the last user message: a thank-you expects text, a parallel turn two calls."""
    from llm_deeper.evals.data import from_chat

    _, test = make_tool_dataset(n_train=0, n_test=60, seed=0, distractors=1)
    for example in test:
        scored = from_chat(example, "x")
        if example.meta["kind"] in ("thanks", *NO_CALL_KINDS):
            assert scored.expected_calls == [] and scored.reference
        elif example.meta["kind"] == "parallel":
            assert len(scored.expected_calls) == 2
    assert make_tool_dataset(2, 2, seed=0, mix={"call": 1.0})[0][0].meta["kind"] == "call"


def test_held_out_set_is_fixed_and_agent_tasks_stay_unseen():
    """The test split does not move with the training size or mix; agent requests and values never appear in training."""
    from llm_deeper.evals.agent_tasks import make_agent_tasks

    train, test = make_tool_dataset(n_train=300, n_test=30, seed=0, distractors=1)
    _, same = make_tool_dataset(n_train=7, n_test=30, seed=0, distractors=1)
    assert [e.to_json() for e in test] == [e.to_json() for e in same]
    tasks = make_agent_tasks(60, seed=0)
    assert not {t.request for t in tasks} & {user_text(e) for e in train}
    trained_calls = {(c["function"]["name"], c["function"]["arguments"]) for e in train for m in e.messages for c in m.get("tool_calls") or []}
    task_calls = {(c["name"], json.dumps(c["arguments"], separators=(",", ":"))) for t in tasks for c in t.expected_calls}
    assert not trained_calls & task_calls


def test_recipe_lengths_fit_the_default_tokenizer():
    """The quick recipe has a step to take and a held-out row to score; the full one keeps most chains' second call;
    the speedrun's steps stay inside its token budget (6 minutes at a 2-core AVX2 EPYC's 140 tok/s)."""
    from llm_deeper.chat_format import training_ids
    from llm_deeper.data.sft_render import tokenize_dataset
    from llm_deeper.finetune.tool_recipe import QUICK, ToolRecipe
    from llm_deeper.models.loaders import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m-instruct")
    train, test = make_tool_dataset(QUICK.n_train, QUICK.n_test, QUICK.seed, QUICK.distractors)
    assert len(tokenize_dataset(tokenizer, train, QUICK.max_length)[0]) >= QUICK.batch_size
    assert tokenize_dataset(tokenizer, test, QUICK.max_length)[0]
    recipe = ToolRecipe()
    train, _ = make_tool_dataset(recipe.n_train, 0, recipe.seed, recipe.distractors, mix=with_twins(recipe.twins))
    ends = [training_ids(tokenizer, e.messages, e.tools).turns[1][1] for e in train if e.meta["kind"] == "chain"]
    assert len(ends) > 10 and sum(end <= recipe.max_length for end in ends) >= 0.6 * len(ends)
    rows, _ = tokenize_dataset(tokenizer, train, recipe.max_length)
    per_row = sum(len(r.input_ids) for r in rows) / len(rows)
    budget = 6 * 60 * 140  # token positions in the stage's 6 minutes at the 2-core AVX2 kind's 140 tok/s (issue 23)
    assert len(rows) >= recipe.max_steps * recipe.batch_size and per_row * recipe.max_steps * recipe.batch_size <= budget


def test_generated_tools_are_many_typed_and_held_out_by_tool():
    """216 tools over 24 domains with every parameter type; the test split's tools never appear in training, even offered."""
    from collections import Counter

    from llm_deeper.data import toolgen

    assert len({t.name for t in toolgen.TOOLS}) == len(toolgen.TOOLS) >= 200 and len(toolgen.DOMAINS) >= 20
    types = Counter(p.get("type") for t in toolgen.TOOLS for p in t.schema["function"]["parameters"]["properties"].values())
    assert {"string", "number", "integer", "boolean", "array", "object"} <= set(types)
    assert any("default" in p and p["default"] is not None for t in toolgen.TOOLS for p in t.schema["function"]["parameters"]["properties"].values())
    held_out = {t.name for t in toolgen.tools_of("test")}
    assert len(held_out) >= 40
    train, test = make_tool_dataset(n_train=400, n_test=60, seed=0, distractors=1)
    offered_in_training = {t["function"]["name"] for e in train for t in e.tools or []}
    assert not held_out & offered_in_training
    tested = [e for e in test if e.meta["kind"] == "gen_call"]
    assert tested and all(e.meta["expected_tool"] in held_out for e in tested)
    for example in [e for e in train if e.meta["kind"] == "gen_call"] + tested:
        arguments = json.loads(example.messages[1]["tool_calls"][0]["function"]["arguments"])
        for value in arguments.values():  # every value is said in the request, word for word
            for said in (value if isinstance(value, list) else value.values() if isinstance(value, dict) else [value]):
                if said is not True:
                    assert str(said) in user_text(example), (said, user_text(example))
        schema = next(t for t in example.tools if t["function"]["name"] == example.meta["expected_tool"])["function"]["parameters"]
        assert set(schema["required"]) <= set(arguments) <= set(schema["properties"])
    near = [e for e in train if e.meta["kind"] == "gen_near_miss"]
    positives = {e.meta["expected_tool"] for e in train if e.meta["kind"] == "gen_call"}
    assert near and sum(bool({t["function"]["name"] for t in e.tools} & positives) for e in near) > 0.8 * len(near)


def test_multi_exchange_rows_put_several_decisions_behind_one_tool_prompt():
    """One tool prompt, 2-3 requests: calls to offered tools, refusals of tools named like them, plain answers; each
    assistant turn opens a span the decision weight covers, and the held-out set never holds such a row."""
    import torch

    from llm_deeper.data.sft_render import tokenize_example
    from llm_deeper.finetune.modeling import decision_weights
    from llm_deeper.models.tiny import tiny_tokenizer

    train, test = make_tool_dataset(n_train=48, n_test=20, seed=0, distractors=1, mix={"multi": 1.0}, test_mix={"call": 1.0})
    assert {e.meta["kind"] for e in train} == {"multi"} and {e.meta["kind"] for e in test} == {"call"}
    from llm_deeper.data import toolgen

    held_out = {t.name for t in toolgen.tools_of("test")}
    tokenizer, both, generated = tiny_tokenizer(), 0, 0
    for example in train:
        offered = {t["function"]["name"] for t in example.tools}
        users = [i for i, m in enumerate(example.messages) if m["role"] == "user"]
        assert len(users) == example.meta["turns"] in (2, 3) and len(offered) == 2 and not offered & held_out
        calls = [c["function"]["name"] for m in example.messages for c in m.get("tool_calls") or []]
        assert set(calls) <= offered
        refusals = [m["content"] for m in example.messages if m["role"] == "assistant" and m["content"] and "can't" in m["content"]]
        both += bool(calls and refusals)
        generated += not offered & {s.tool for s in SCENARIOS}
        labels = torch.tensor([tokenize_example(tokenizer, example).labels])
        weights = decision_weights(labels, 5.0, 1)
        after_user_or_tool = sum(m["role"] == "assistant" for m in example.messages)
        assert int((weights == 5.0).sum()) == after_user_or_tool  # every assistant turn's first label, not only the first turn's
    assert both > 8 and 0.45 < generated / len(train) < 0.9  # called and declined in one conversation; most over generated tools


def test_twins_share_the_offered_tools_one_calls_one_declines_and_train_in_one_step():
    """A twin pair: one tool list, a request an offered tool serves (a call) and one none serves (words), one
    `batch_group`; `with_twins` keeps each side's share of the rows; the trainer's order puts a pair in one step."""
    import torch

    from llm_deeper.data import toolgen
    from llm_deeper.data.sft_render import tokenize_example
    from llm_deeper.data.toolcalls import MIX, with_twins
    from llm_deeper.finetune.loop import kept_together
    from llm_deeper.models.tiny import tiny_tokenizer

    mix = with_twins(1.0)
    calls = ("call", "parallel", "thanks", "chain", "gen_call")
    rows_of = {kind: weight * (2 if kind in ("twin", "gen_twin") else 1) for kind, weight in mix.items()}
    assert abs(sum(rows_of[k] for k in calls) + (rows_of["twin"] + rows_of["gen_twin"]) / 2 - sum(MIX[k] for k in calls)) < 1e-9
    assert mix["near_miss"] == mix["gen_near_miss"] == mix["gen_other"] == 0 and mix["small_talk"] == MIX["small_talk"]

    train, _ = make_tool_dataset(n_train=41, n_test=4, seed=0, distractors=1, mix=mix, test_mix={"call": 1.0})
    assert len(train) == 41
    pairs: dict[str, list] = {}
    for example in train:
        if "batch_group" in example.meta:
            pairs.setdefault(example.meta["batch_group"], []).append(example)
    assert len(pairs) >= 10 and {e.meta["kind"] for p in pairs.values() for e in p} == {"twin", "gen_twin"}
    held_out = {t.name for t in toolgen.tools_of("test")}
    for called, declined in pairs.values():
        offered = [t["function"]["name"] for t in called.tools]
        assert called.tools == declined.tools and len(offered) == 2 and not set(offered) & held_out
        assert called.messages[1]["tool_calls"][0]["function"]["name"] == called.meta["expected_tool"] in offered
        assert declined.meta["expected_tool"] is None and len(declined.messages) == 2 and "tool_calls" not in declined.messages[1]
        assert declined.meta.get("withheld_tool", "") not in offered and user_text(declined) != user_text(called)

    tokenizer = tiny_tokenizer()
    rows = [tokenize_example(tokenizer, e) for e in train]
    groups, lengths = [r.group for r in rows], [len(r.input_ids) for r in rows]
    assert sum(g is not None for g in groups) == 2 * len(pairs)
    for seed in (0, 1):
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
        for kept in (kept_together(order, groups, 2), kept_together(order, groups, 2, lengths, seed)):
            assert sorted(kept) == list(range(len(rows)))
            step_of = {i: position // 2 for position, i in enumerate(kept)}
            for group in pairs:
                assert len({step_of[i] for i in range(len(rows)) if groups[i] == group}) == 1
