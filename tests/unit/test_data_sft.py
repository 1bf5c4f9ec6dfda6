"""JSONL readers, chat rendering, assistant-only masks, truncation, packing."""

from __future__ import annotations

import json

import pytest

from llm_deeper.data.sft import DataFormatError, read_jsonl
from llm_deeper.data.sft_render import IGNORE, collate, tokenize_dataset, tokenize_example


@pytest.fixture(scope="module")
def tokenizer():
    from llm_deeper.models.tiny import tiny_tokenizer

    return tiny_tokenizer()


def write(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def trained_text(tokenizer, item) -> str:
    return tokenizer.decode([t for t, label in zip(item.input_ids, item.labels) if label != IGNORE])


def test_three_shapes_become_chat(tmp_path):
    path = write(
        tmp_path / "mix.jsonl",
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"instruction": "Translate", "input": "chat", "output": "cat"},
        "",
        {"prompt": "2+2?", "completion": "4"},
    )
    chat, alpaca, pc = read_jsonl(path)
    assert alpaca.messages == [{"role": "user", "content": "Translate\n\nchat"}, {"role": "assistant", "content": "cat"}]
    assert pc.messages[-1] == {"role": "assistant", "content": "4"}
    assert pc.source.endswith("mix.jsonl:4")  # blank line 3 skipped, numbering kept


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role 'robot'"),
        ({"messages": [{"role": "user", "content": "only a question"}]}, "no assistant message"),
        ({"text": "raw"}, "unknown shape"),
        ({"prompt": "", "completion": "x"}, "'prompt' is empty"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}]}, "not valid JSON"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": [{"name": "f"}]}, "tools[0]"),
    ],
)
def test_bad_line_names_file_line_and_problem(tmp_path, line, message):
    path = write(tmp_path / "bad.jsonl", {"prompt": "ok", "completion": "fine"}, line)
    with pytest.raises(DataFormatError) as info:
        read_jsonl(path)
    assert f"{path}:2" in str(info.value) and message in str(info.value)


def test_mask_covers_assistant_turns_and_end_of_turn(tokenizer, tmp_path):
    path = write(tmp_path / "c.jsonl", {"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another?"}, {"role": "assistant", "content": "Red."}]})
    item = tokenize_example(tokenizer, read_jsonl(path)[0])
    assert trained_text(tokenizer, item) == "Blue.<|im_end|>Red.<|im_end|>"  # end-of-turn inside, prompts outside
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert sum(1 for t, label in zip(item.input_ids, item.labels) if label == eos) == 2
    assert tokenizer.decode(item.input_ids).startswith("<|im_start|>system\nBe brief.")


def test_mask_on_the_real_template(tmp_path):
    from llm_deeper.models.loaders import load_tokenizer

    real = load_tokenizer("smollm2-135m-instruct")  # adds its own default system prompt; the mask must still line up
    path = write(tmp_path / "c.jsonl", {"prompt": "What is the capital of France?", "completion": "Paris."})
    item = tokenize_example(real, read_jsonl(path)[0])
    assert trained_text(real, item) == "Paris.<|im_end|>"
    assert "SmolLM" in real.decode(item.input_ids)


def test_truncation_counts_and_drops_empty(tokenizer, tmp_path):
    long_answer = "word " * 200
    path = write(tmp_path / "t.jsonl",
                 {"prompt": "short", "completion": "ok"},
                 {"prompt": "tell me a lot", "completion": long_answer},
                 {"prompt": "x" * 300, "completion": "never seen"})
    rows, stats = tokenize_dataset(tokenizer, read_jsonl(path), max_length=128)
    assert (stats.examples, stats.truncated, stats.dropped, len(rows)) == (3, 2, 1, 2)
    assert all(len(r.input_ids) <= 128 for r in rows)


def test_packing_keeps_every_conversation_and_fits(tokenizer, tmp_path):
    records = [{"prompt": f"question {i} " + "x" * (i * 7), "completion": f"answer {i}"} for i in range(8)]
    examples = read_jsonl(write(tmp_path / "p.jsonl", *records))
    plain, _ = tokenize_dataset(tokenizer, examples, max_length=256)
    packed, stats = tokenize_dataset(tokenizer, examples, max_length=256, pack=True)
    assert len(packed) < len(plain)
    assert all(len(r.input_ids) <= 256 for r in packed)
    assert sorted(s for r in packed for s in r.sources) == sorted(r.sources[0] for r in plain)
    assert stats.trained_tokens == sum(r.trained_tokens for r in plain)


def test_collate_pads_right_and_ignores_padding(tokenizer, tmp_path):
    examples = read_jsonl(write(tmp_path / "c.jsonl", {"prompt": "a", "completion": "b"}, {"prompt": "a longer prompt", "completion": "b"}))
    rows, _ = tokenize_dataset(tokenizer, examples)
    batch = collate(rows, pad_id=2)
    short = len(rows[0].input_ids)
    assert batch["input_ids"].shape == (2, len(rows[1].input_ids))
    assert batch["attention_mask"][0, short:].sum() == 0 and (batch["labels"][0, short:] == IGNORE).all()
