"""Engine pieces: sampling vs transformers' processors, stop strings, batching, cancel, limits, LoRA vs PEFT."""

from __future__ import annotations

import time

import pytest
import torch

from llm_deeper.errors import UserError
from llm_deeper.inference.engine import ContextLengthError, Engine, QueueFullError
from llm_deeper.inference.sampler import apply_penalties, pick_token
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.inference.stops import TextTracker

HI = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def engine(tiny_llama_dir):
    engine = Engine.load(str(tiny_llama_dir), max_batch=3, max_queue=2)
    yield engine
    engine.close()


# -- sampling pieces against transformers' own logits processors ---------------
def test_repetition_penalty_matches_transformers():
    from transformers import RepetitionPenaltyLogitsProcessor

    torch.manual_seed(0)
    logits = torch.randn(50)
    prompt, output = [1, 5, 7], {7: 2, 9: 1}
    ours = apply_penalties(logits, SamplingConfig(repetition_penalty=1.3), prompt, output)
    theirs = RepetitionPenaltyLogitsProcessor(1.3)(torch.tensor([prompt + [7, 7, 9]]), logits.clone().unsqueeze(0))[0]
    assert torch.allclose(ours, theirs)


def test_frequency_and_presence_penalties_follow_openai():
    logits = torch.zeros(10)
    out = apply_penalties(logits, SamplingConfig(frequency_penalty=0.5, presence_penalty=0.25), [1, 2], {3: 2, 4: 1})
    assert out[3] == pytest.approx(-1.25) and out[4] == pytest.approx(-0.75) and out[1] == 0 and logits[3] == 0


def test_top_k_and_top_p_keep_what_transformers_keeps():
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    torch.manual_seed(1)
    logits = torch.randn(40)
    for config, warper in [(SamplingConfig(temperature=1.0, top_k=5), TopKLogitsWarper(5)), (SamplingConfig(temperature=1.0, top_p=0.7), TopPLogitsWarper(0.7))]:
        allowed = torch.isfinite(warper(None, logits.clone().unsqueeze(0))[0])
        generator = torch.Generator().manual_seed(0)
        drawn = {pick_token(logits, config, generator) for _ in range(400)}
        assert drawn <= set(allowed.nonzero().flatten().tolist())
        assert len(drawn) > 1


def test_seeded_sampling_is_reproducible(engine):
    config = SamplingConfig(max_new_tokens=20, temperature=1.0, seed=42, ignore_eos=True)
    first, second = engine.generate(HI, config), engine.generate(HI, config)
    other = engine.generate(HI, SamplingConfig(max_new_tokens=20, temperature=1.0, seed=43, ignore_eos=True))
    assert first.token_ids == second.token_ids != other.token_ids


# -- stop strings and UTF-8 ----------------------------------------------------
def test_text_tracker_holds_stop_prefixes_and_cuts_stops(tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    ids = tokenizer("abc<END>def", add_special_tokens=False)["input_ids"]
    tracker = TextTracker(tokenizer, ["<END>"])
    pieces = [tracker.add(i) for i in ids[:6]]
    assert "".join(pieces) == "abc" and not tracker.stopped  # "<EN" may still become "<END>"
    pieces += [tracker.add(i) for i in ids[6:8]]
    assert "".join(pieces) == "abc" and tracker.stopped
    # A multi-byte character arrives over several byte tokens and is never shown half-done.
    tracker = TextTracker(tokenizer, [])
    pieces = [tracker.add(i) for i in tokenizer("é🌊", add_special_tokens=False)["input_ids"]]
    assert all("\ufffd" not in p for p in pieces) and "".join(pieces) == "é🌊"


def test_tracker_text_equals_decoding_every_id(tiny_llama_dir):
    # The tracker decodes a window of ids per token; its text must be what decoding the whole reply gives.
    import random

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    rng = random.Random(0)
    written = tokenizer("Grüße, 東京! 🌊 x = [1, 2]<|im_end|>  done", add_special_tokens=False)["input_ids"]
    for ids in [written] + [[rng.randrange(tokenizer.vocab_size) for _ in range(60)] for _ in range(5)]:
        tracker = TextTracker(tokenizer, [])
        shown = ""
        for k, token in enumerate(ids, start=1):
            shown += tracker.add(token)
            assert tracker.text == tokenizer.decode(ids[:k], skip_special_tokens=True)
        assert shown + tracker.finish() == tokenizer.decode(ids, skip_special_tokens=True)


def test_tracker_keeps_the_spaces_a_sentencepiece_decoder_drops_at_the_start():
    # A Metaspace decoder (Llama 2, Mistral) drops the leading space of a text: decoding only the
    # new ids would glue words together ("helloworld"); the window's context keeps the space.
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "▁hello": 1, "▁world": 2, "!": 3, "▁again": 4}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    assert tokenizer.decode([2]) == "world"  # the trap: alone, a word loses its space
    tracker = TextTracker(tokenizer, [])
    shown = "".join(tracker.add(token) for token in [1, 2, 3, 4, 2])
    assert shown == "hello world! again world" == tokenizer.decode([1, 2, 3, 4, 2])


class CharTokenizer:
    """One token per character: the tracker's own logic, without a vocabulary's merges."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(map(chr, ids))


def test_compiled_stop_matching_equals_checking_each_stop_in_turn():
    import random

    rng = random.Random(0)
    for _ in range(300):
        stops = ["".join(rng.choice("abc") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 6))]
        text = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 30)))
        tracker = TextTracker(CharTokenizer(), stops)
        shown = ""
        for char in text:
            shown += tracker.add(ord(char))
            # Nothing shown may be the start of a stop that is still open: every held-back tail is a stop's prefix.
            held = "".join(map(chr, tracker.ids))[len(shown):]
            assert tracker.stopped or held == "" or any(s.startswith(held) for s in stops), (stops, text, held)
            if tracker.stopped:
                break
        shown += tracker.finish()
        # The reference: after each character, look for every stop in the text so far; cut at the first one found.
        hits = next(([(seen.find(s), s) for s in stops if s in seen] for seen in (text[:k] for k in range(len(text) + 1))
                     if any(s in seen for s in stops)), [])
        expected = text[: min(hits)[0]] if hits else text
        assert shown == expected and tracker.stopped == bool(hits), (stops, text)
        if hits:
            assert (min(hits)[0], tracker.matched) in hits  # a stop that starts where the reply was cut


def test_stop_lists_are_capped():
    from llm_deeper.errors import UserError
    from llm_deeper.inference.stops import MAX_STOP_CHARS, MAX_STOPS

    SamplingConfig(stop=("x",) * MAX_STOPS).validate()
    with pytest.raises(UserError, match=f"at most {MAX_STOPS} stop strings"):
        SamplingConfig(stop=("x",) * (MAX_STOPS + 1)).validate()
    with pytest.raises(UserError, match=f"at most {MAX_STOP_CHARS} characters"):
        SamplingConfig(stop=("x" * (MAX_STOP_CHARS + 1),)).validate()


def test_stop_string_ends_generation(engine):
    base = engine.generate(HI, SamplingConfig(max_new_tokens=30)).text
    stop = base[4:7]
    result = engine.generate(HI, SamplingConfig(max_new_tokens=30, stop=(stop,)))
    assert result.finish_reason == "stop" and result.text == base[: base.index(stop)]


def test_stop_token_ids_and_max_tokens(engine):
    base = engine.generate(HI, SamplingConfig(max_new_tokens=10, ignore_eos=True))
    assert base.finish_reason == "length" and len(base.token_ids) == 10
    cut = engine.generate(HI, SamplingConfig(max_new_tokens=10, stop_token_ids=(base.token_ids[3],), ignore_eos=True))
    assert cut.finish_reason == "stop" and cut.token_ids == base.token_ids[: base.token_ids.index(base.token_ids[3]) + 1]


# -- continuous batching ---------------------------------------------------------
def test_requests_join_and_leave_a_running_batch(engine):
    """A late request joins between decode steps; everyone gets what they would get alone."""
    prompts = [[{"role": "user", "content": "x" * (i + 1)}] for i in range(5)]
    configs = [SamplingConfig(max_new_tokens=6 + 5 * i, ignore_eos=True) for i in range(5)]
    alone = [engine.generate(p, c).token_ids for p, c in zip(prompts, configs)]
    steps_before = engine.steps
    first = engine.submit(prompts[0], configs[0])
    requests = [first] + [engine.submit(p, c) for p, c in zip(prompts[1:], configs[1:])]
    together = [r.result().token_ids for r in requests]
    assert together == alone
    total = sum(len(t) for t in alone)
    assert engine.steps - steps_before < total - 5, "requests shared decode steps"


def test_cancel_frees_the_slot_within_a_step(engine):
    request = engine.submit(HI, SamplingConfig(max_new_tokens=400, ignore_eos=True))
    events = request.events()
    next(events)
    request.cancel()
    last = list(events)[-1]
    assert last.finish_reason == "cancelled" and last.usage.completion_tokens < 400
    deadline = time.monotonic() + 2
    while engine.stats()["running"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.stats()["running"] == 0


def test_stream_leaving_early_cancels(engine):
    for number, event in enumerate(engine.stream(HI, SamplingConfig(max_new_tokens=400, ignore_eos=True))):
        if number == 2:
            break
    deadline = time.monotonic() + 2
    while engine.stats()["running"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.stats()["running"] == 0


def test_context_and_queue_limits(engine):
    with pytest.raises(ContextLengthError, match=str(engine.context_length)):
        engine.submit("y" * (engine.context_length + 5), SamplingConfig())
    long = SamplingConfig(max_new_tokens=400, ignore_eos=True)
    held = [engine.submit(HI, long) for _ in range(engine.max_batch + engine.max_queue)]
    with pytest.raises(QueueFullError):
        engine.submit(HI, SamplingConfig(max_new_tokens=2))
    for request in held:
        request.cancel()
    for request in held:
        list(request.events())
    assert engine.generate(HI, SamplingConfig(max_new_tokens=2)).usage.completion_tokens == 2
    with pytest.raises(UserError):
        engine.submit(HI, SamplingConfig(temperature=5))
    with pytest.raises(UserError):
        engine.submit([], SamplingConfig())


def test_generation_stops_at_the_context_end(tmp_path):
    from llm_deeper.models.tiny import save_tiny_model

    engine = Engine.load(str(save_tiny_model(tmp_path / "m", context=64)))
    try:
        ids = engine.encode(HI)
        result = engine.generate(HI, SamplingConfig(max_new_tokens=500, ignore_eos=True))
        assert result.finish_reason == "length" and len(ids) + len(result.token_ids) == 64
    finally:
        engine.close()


def test_kv_cache_grows_and_moves():
    from llm_deeper.inference.kv_cache import SlotKVCache

    cache = SlotKVCache(layers=2, slots=3, kv_heads=2, head_dim=4, max_len=100, dtype=torch.float32, initial=8)
    cache.keys[0][2, :, :5] = 1.5
    cache.grow(20)
    assert cache.capacity == 20 and float(cache.keys[0][2, :, :5].mean()) == 1.5
    cache.grow(90)
    assert cache.capacity == 90  # doubling would pass the context: capped
    cache.move(2, 0, 5)
    assert float(cache.keys[0][0, :, :5].mean()) == 1.5
    assert SlotKVCache.bytes_per_token(30, 3, 64, 4) == 2 * 30 * 3 * 64 * 4


# -- LoRA adapters, per request row, against PEFT ------------------------------
def _make_adapter(folder, seed: int, targets):
    from peft import LoraConfig, get_peft_model

    from llm_deeper.models.tiny import tiny_llama

    torch.manual_seed(seed)
    peft_model = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=16, target_modules=targets, init_lora_weights=False))
    peft_model.save_pretrained(folder)
    return folder


def test_lora_rows_match_peft(tiny_llama_dir, tmp_path):
    from peft import PeftModel

    from llm_deeper.models.loaders import load_hf_folder

    a = _make_adapter(tmp_path / "a", 1, ["q_proj", "v_proj", "down_proj"])
    b = _make_adapter(tmp_path / "b", 2, ["k_proj", "o_proj", "gate_proj", "up_proj"])
    engine = Engine.load(str(tiny_llama_dir), loras={"a": a, "b": b}, max_batch=4)
    try:
        ids = engine.encode(HI)
        config = SamplingConfig(max_new_tokens=12, ignore_eos=True)
        # Base, a and b decode in one batch, each with its own weights.
        requests = [engine.submit(HI, config, adapter=name) for name in (None, "a", "b")]
        results = [r.result().token_ids for r in requests]
        for name, tokens in zip((None, "a", "b"), results):
            model, _ = load_hf_folder(tiny_llama_dir)
            if name:
                model = PeftModel.from_pretrained(model, {"a": a, "b": b}[name]).eval()
            with torch.inference_mode():
                out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=12,
                                     do_sample=False, temperature=None, top_p=None, top_k=None, eos_token_id=None, pad_token_id=2)
            assert tokens == out[0, len(ids):].tolist(), name
        assert results[1] != results[0] or results[2] != results[0]
        with pytest.raises(UserError, match="unknown adapter"):
            engine.submit(HI, config, adapter="zzz")
    finally:
        engine.close()


def test_bad_adapter_folder_is_a_user_error(tiny_llama_dir, tmp_path):
    with pytest.raises(UserError, match="adapter_config.json"):
        Engine.load(str(tiny_llama_dir), loras={"x": tmp_path})


# -- grammar-constrained rows -----------------------------------------------------
def test_constrained_and_free_rows_share_a_batch(engine):
    import json

    import jsonschema

    from llm_deeper.inference.constrained import Constraint, grammar_cache

    cache = grammar_cache(engine.tokenizer, engine.vocab_size)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}}, "required": ["ok", "n"]}
    constraint = Constraint.json_schema(schema)
    compiled = cache.compile(constraint)
    assert cache.compile(Constraint.json_schema(dict(reversed(list(schema.items()))))) is compiled  # cached per schema
    config = SamplingConfig(max_new_tokens=40, temperature=1.0, seed=5)
    free = engine.submit(HI, config)
    constrained = [engine.submit(HI, SamplingConfig(max_new_tokens=40, temperature=1.0, seed=s, constraint=constraint)) for s in range(2)]
    free.result()
    for request in constrained:
        result = request.result()
        assert result.finish_reason == "stop"
        jsonschema.validate(json.loads(result.text), schema)
    with pytest.raises(UserError):
        cache.compile(Constraint.json_schema({"type": "object", "properties": {"a": {"type": "nonsense"}}}))


def test_extreme_sampling_values_do_not_break_the_batch(engine):
    greedy = engine.generate(HI, SamplingConfig(max_new_tokens=6, ignore_eos=True))
    tiny_t = engine.generate(HI, SamplingConfig(max_new_tokens=6, temperature=1e-30, ignore_eos=True))
    assert tiny_t.token_ids == greedy.token_ids  # a vanishing temperature is greedy, not inf/inf
    harsh = engine.generate(HI, SamplingConfig(max_new_tokens=6, temperature=2.0, repetition_penalty=1e-6, frequency_penalty=2.0, ignore_eos=True))
    assert harsh.finish_reason == "length" and len(harsh.token_ids) == 6
