"""The synthetic tool-calling data set: held-out split, server rendering, real tool results."""

from __future__ import annotations

import json

from llm_deeper.data.sft import read_jsonl
from llm_deeper.data.toolcalls import SCENARIOS, make_tool_dataset, write_tool_dataset


def user_text(example) -> str:
    return next(m["content"] for m in example.messages if m["role"] == "user")


def test_deterministic_and_well_formed(tmp_path):
    train_path, test_path = write_tool_dataset(tmp_path, n_train=60, n_test=20, seed=3)
    again = write_tool_dataset(tmp_path / "again", n_train=60, n_test=20, seed=3)
    assert train_path.read_bytes() == again[0].read_bytes()
    train = read_jsonl(train_path)  # our own reader accepts every line
    tool_rows = [e for e in train if e.meta["expected_tool"]]
    assert len(tool_rows) > 40
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
    train_args = {e.messages[1]["tool_calls"][0]["function"]["arguments"] for e in train if e.meta["expected_tool"] not in (None, "get_current_time")}
    test_args = {e.messages[1]["tool_calls"][0]["function"]["arguments"] for e in test if e.meta["expected_tool"] not in (None, "get_current_time")}
    assert not train_args & test_args


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
