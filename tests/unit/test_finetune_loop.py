"""Fine-tuning on a tiny random Llama: PEFT adapter round trip, full, resume, seed, merge, errors."""

from __future__ import annotations

import json

import pytest
import torch

from llm_deeper.errors import UserError
from llm_deeper.finetune.config import FinetuneConfig
from llm_deeper.finetune.loop import train


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    """Conversations of different lengths (so per-token loss normalisation matters)."""
    folder = tmp_path_factory.mktemp("ft-data")
    path = folder / "train.jsonl"
    with path.open("w") as handle:
        for i in range(16):
            handle.write(json.dumps({"messages": [{"role": "user", "content": f"Repeat {i} " + "ab" * (i % 5)},
                                                  {"role": "assistant", "content": f"{i} " + "ab" * (i % 5)}]}) + "\n")
    return path


def config(tiny_llama_dir, data, out, **kw) -> FinetuneConfig:
    base = dict(data=data, output=out, model=str(tiny_llama_dir), batch_size=4, max_length=128, lr=5e-3, dropout=0.0, epochs=1, dtype="float32")
    return FinetuneConfig(**{**base, **kw})


def weights(folder):
    from safetensors.torch import load_file

    name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(folder / name)


def test_a_run_cut_by_max_steps_is_scored_where_it_stops(tiny_llama_dir, chat_data, tmp_path):
    # The speedrun's tool recipe stops at 40 of a 64-step epoch and reads the held-out loss after them;
    # without a score at the last step its "after" was the "before" and the stage failed.
    result = train(config(tiny_llama_dir, chat_data, tmp_path / "cut", eval_data=chat_data, batch_size=1, max_steps=3, lr=2e-2))
    assert [step for step, _ in result.eval_losses] == [0, 3]


def test_lora_adapter_loads_with_peft_and_learns(tiny_llama_dir, chat_data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = train(config(tiny_llama_dir, chat_data, tmp_path / "a", eval_data=chat_data, epochs=3, lr=2e-2))
    assert result.eval_losses[-1][1] < result.eval_losses[0][1] - 0.05
    assert (tmp_path / "a" / "adapter_config.json").exists() and not list((tmp_path / "a").glob("checkpoint-*"))
    assert 0 < result.trainable < result.total / 5
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    peft_model = PeftModel.from_pretrained(base, tmp_path / "a").eval()
    ids = torch.tensor([[1, 80, 81, 82]])
    with torch.no_grad():
        tuned, plain = peft_model(input_ids=ids).logits, AutoModelForCausalLM.from_pretrained(tiny_llama_dir)(input_ids=ids).logits
    assert (tuned - plain).abs().max() > 1e-3


def test_merge_gives_the_adapter_outputs(tiny_llama_dir, chat_data, tmp_path):
    from llm_deeper.finetune.merge import load_with_adapter, merge_adapter
    from llm_deeper.models.loaders import load_model

    train(config(tiny_llama_dir, chat_data, tmp_path / "a", max_steps=2, lr=2e-2))
    merged_dir = merge_adapter(str(tiny_llama_dir), tmp_path / "a", tmp_path / "m")
    peft_model, _ = load_with_adapter(str(tiny_llama_dir), tmp_path / "a")
    merged = load_model(str(merged_dir)).model
    ids = torch.tensor([[1, 70, 71, 72, 73]])
    with torch.no_grad():
        assert (peft_model(input_ids=ids).logits - merged(input_ids=ids).logits).abs().max() < 1e-5
    assert not any("lora" in k for k in weights(merged_dir))


def test_full_changes_all_weights_and_same_seed_same_run(tiny_llama_dir, chat_data, tmp_path):
    one = train(config(tiny_llama_dir, chat_data, tmp_path / "f1", method="full", lr=1e-3, seed=7))
    two = train(config(tiny_llama_dir, chat_data, tmp_path / "f2", method="full", lr=1e-3, seed=7))
    assert one.trainable == one.total and one.train_losses == two.train_losses
    w1, w2 = weights(tmp_path / "f1"), weights(tmp_path / "f2")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    other = train(config(tiny_llama_dir, chat_data, tmp_path / "f3", method="full", lr=1e-3, seed=8))
    assert other.train_losses != one.train_losses  # the seed really drives the data order


def test_resume_continues_exactly(tiny_llama_dir, chat_data, tmp_path):
    straight = train(config(tiny_llama_dir, chat_data, tmp_path / "s", epochs=2, dropout=0.1))
    halted = train(config(tiny_llama_dir, chat_data, tmp_path / "r", epochs=2, dropout=0.1, halt_after=3))
    assert halted.halted and (tmp_path / "r" / "checkpoint-3").is_dir()
    resumed = train(config(tiny_llama_dir, chat_data, tmp_path / "r", epochs=2, dropout=0.1, resume=True))
    assert resumed.steps == straight.steps == 8
    assert resumed.train_losses == pytest.approx(straight.train_losses, abs=1e-6)  # same machine, same order: equal up to the JSON round trip
    a, b = weights(tmp_path / "s"), weights(tmp_path / "r")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_token_loss_equals_transformers_loss(tiny_llama_dir, chat_data):
    from llm_deeper.data.sft import read_jsonl
    from llm_deeper.data.sft_render import collate, tokenize_dataset
    from llm_deeper.finetune.modeling import make_token_loss
    from llm_deeper.models.loaders import load_model

    loaded = load_model(str(tiny_llama_dir))
    rows, _ = tokenize_dataset(loaded.tokenizer, read_jsonl(chat_data)[:4])
    batch = collate(rows, pad_id=2)
    with torch.no_grad():
        total, count = make_token_loss(loaded.model)(**batch)
        reference = loaded.model(**batch).loss  # mean over labelled tokens, full logits
    assert abs(float(total / count) - float(reference)) < 1e-5


def test_chunked_loss_gives_the_same_loss_and_gradients(tiny_llama_dir):
    """Over LOSS_CHUNK labelled tokens the head runs in recomputed chunks; nothing may change."""
    from llm_deeper.finetune.modeling import LOSS_CHUNK, make_token_loss
    from llm_deeper.models.loaders import load_model

    model = load_model(str(tiny_llama_dir)).model
    ids = torch.randint(3, 250, (2, LOSS_CHUNK + 40), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    total, count = make_token_loss(model)(**batch)
    assert int(count) > LOSS_CHUNK
    total.backward()
    chunked = model.model.embed_tokens.weight.grad.clone()
    model.zero_grad()
    reference = model(**batch).loss
    (reference * count).backward()
    assert abs(float(total / count) - float(reference)) < 1e-5
    assert torch.allclose(chunked, model.model.embed_tokens.weight.grad, rtol=1e-4, atol=1e-5)  # only the summation order differs


def test_errors_are_one_line_user_errors(tiny_llama_dir, chat_data, tmp_path):
    if not torch.cuda.is_available():  # on CUDA machines the flag is valid; the CPU message is what we check here
        with pytest.raises(UserError, match="needs a CUDA GPU"):
            train(config(tiny_llama_dir, chat_data, tmp_path / "q", qlora=True))
    with pytest.raises(UserError, match="no checkpoint"):
        train(config(tiny_llama_dir, chat_data, tmp_path / "none", resume=True))
    with pytest.raises(UserError, match="fewer than one step"):
        train(config(tiny_llama_dir, chat_data, tmp_path / "big", batch_size=32))
    with pytest.raises(UserError, match="target-modules"):
        train(config(tiny_llama_dir, chat_data, tmp_path / "t", target_modules=["query_key_value"]))
    with pytest.raises(UserError, match="unknown method"):
        config(tiny_llama_dir, chat_data, tmp_path / "m", method="half").validate()



def test_lora_base_is_bf16_only_where_the_hardware_runs_it_faster(tiny_llama_dir, chat_data, tmp_path, monkeypatch):
    import llm_deeper.hardware as hardware

    monkeypatch.setattr(hardware, "bf16_matmul_pays", lambda: True)
    assert FinetuneConfig(data=chat_data, output=tmp_path).base_dtype == "bfloat16"  # LoRA: frozen base
    assert FinetuneConfig(data=chat_data, output=tmp_path, method="full").base_dtype == "float32"  # AdamW needs fp32 weights
    assert FinetuneConfig(data=chat_data, output=tmp_path, dtype="float32").base_dtype == "float32"  # asked for
    monkeypatch.setattr(hardware, "bf16_matmul_pays", lambda: False)
    assert FinetuneConfig(data=chat_data, output=tmp_path).base_dtype == "float32"  # emulated bf16 is slower than fp32
    with pytest.raises(UserError, match="float32 or bfloat16"):
        FinetuneConfig(data=chat_data, output=tmp_path, dtype="int8").validate()


def test_lora_on_a_bf16_base_learns_and_saves_fp32_adapters(tiny_llama_dir, chat_data, tmp_path):
    result = train(config(tiny_llama_dir, chat_data, tmp_path / "bf16", dtype="bfloat16", epochs=2))
    assert result.train_losses[-1] < result.train_losses[0]
    assert {t.dtype for t in weights(tmp_path / "bf16").values()} == {torch.float32}


def test_layers_adapts_only_the_top_layers_and_backward_stops_below_them(tiny_llama_dir, chat_data, tmp_path):
    from llm_deeper.finetune.modeling import build_trainable, make_token_loss
    from llm_deeper.data.sft import read_jsonl
    from llm_deeper.data.sft_render import collate, tokenize_dataset

    model, tokenizer = build_trainable(config(tiny_llama_dir, chat_data, tmp_path / "a", layers=1))
    depth = model.config.num_hidden_layers
    adapted = {int(n.split("layers.")[1].split(".")[0]) for n, p in model.named_parameters() if p.requires_grad}
    assert adapted == {depth - 1}
    rows, _ = tokenize_dataset(tokenizer, read_jsonl(chat_data)[:4])
    seen = []  # which decoder layers autograd walks back through
    for index, layer in enumerate(model.get_base_model().model.layers):
        layer.register_full_backward_hook(lambda module, grad_in, grad_out, index=index: seen.append(index))
    total, _ = make_token_loss(model)(**collate(rows, pad_id=2))
    total.backward()
    assert seen == [depth - 1]

    result = train(config(tiny_llama_dir, chat_data, tmp_path / "b", layers=1, max_steps=2))
    saved = json.loads((tmp_path / "b" / "adapter_config.json").read_text())
    assert saved["layers_to_transform"] == [depth - 1] and result.steps == 2
    with pytest.raises(UserError, match="--layers 99"):
        build_trainable(config(tiny_llama_dir, chat_data, tmp_path / "c", layers=99))


def test_decision_weight_counts_each_turns_first_labels_w_times(tiny_llama_dir):
    """The weighted loss equals the per-token cross-entropy summed by hand with w on each turn's first 2 labels."""
    import torch.nn.functional as F

    from llm_deeper.finetune.modeling import decision_weights, make_token_loss
    from llm_deeper.models.loaders import load_model

    model = load_model(str(tiny_llama_dir)).model
    ids = torch.randint(3, 250, (2, 24), generator=torch.Generator().manual_seed(1))
    labels = torch.full_like(ids, -100)
    labels[0, 5:9], labels[0, 14:20], labels[1, 3:4], labels[1, 10:24] = ids[0, 5:9], ids[0, 14:20], ids[1, 3:4], ids[1, 10:24]
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    weights = decision_weights(labels, 3.0, 2)
    # targets are labels shifted by one: each span's first two labels (a one-token span: one) weigh 3
    assert weights[0].nonzero().numel() == 23 and (weights == 3.0).nonzero().tolist() == [[0, 4], [0, 5], [0, 13], [0, 14], [1, 2], [1, 9], [1, 10]]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, :-1].float()
        per_token = F.cross_entropy(logits.transpose(1, 2), labels[:, 1:], reduction="none", ignore_index=-100)
        by_hand = float((per_token * weights).sum())
        loss = make_token_loss(model, decision_weight=3.0, decision_tokens=2)
        weighted, count = loss(**batch)
        assert int(count) == 25 and abs(float(weighted) - by_hand) < 1e-4 * by_hand
        assert abs(float(weighted) - float(per_token.sum())) > 0.1  # the weight changes the loss
        loss.eval()  # held-out losses stay unweighted
        plain, _ = loss(**batch)
        assert abs(float(plain) - float(per_token.sum())) < 1e-4 * float(per_token.sum())


def test_bucketed_batches_keep_the_rows_and_cut_padding():
    from llm_deeper.finetune.loop import bucketed

    lengths = [10 + (i * 37) % 300 for i in range(70)]
    order = torch.randperm(70, generator=torch.Generator().manual_seed(0)).tolist()
    grouped = bucketed(order, lengths, per_step=4, seed=0)
    assert sorted(grouped) == list(range(70)) and grouped[68:] == order[68:]  # same rows; the tail past whole steps stays last

    def padding(o):
        return sum(max(lengths[i] for i in o[s:s + 4]) * 4 - sum(lengths[i] for i in o[s:s + 4]) for s in range(0, 68, 4))

    assert padding(grouped) < padding(order) / 3
    assert grouped == bucketed(order, lengths, per_step=4, seed=0) and grouped != bucketed(order, lengths, per_step=4, seed=1)


def test_bucket_and_decision_weight_train_and_bad_values_are_refused(tiny_llama_dir, chat_data, tmp_path):
    result = train(config(tiny_llama_dir, chat_data, tmp_path / "w", bucket=True, decision_weight=3.0, epochs=2))
    assert result.train_losses[-1] < result.train_losses[0]
    with pytest.raises(UserError, match="--decision-weight"):
        config(tiny_llama_dir, chat_data, tmp_path / "x", decision_weight=0.0).validate()
    with pytest.raises(UserError, match="--bucket and --pack"):
        config(tiny_llama_dir, chat_data, tmp_path / "x", bucket=True, pack=True).validate()


def test_rows_of_a_batch_group_train_in_one_step(tiny_llama_dir, tmp_path, monkeypatch):
    """The trainer reads the data's `batch_group` (twins) and never splits a group across steps, bucketed or not;
    a group larger than a step is refused with a clear message."""
    import llm_deeper.data.sft_render as sft_render

    path = tmp_path / "groups.jsonl"
    with path.open("w") as handle:
        for i in range(14):
            record = {"messages": [{"role": "user", "content": f"Say {i} " + "xy" * (i % 7)}, {"role": "assistant", "content": f"{i}"}]}
            if i < 8:
                record["batch_group"] = f"g{i // 2}"  # rows 0-1, 2-3, ...: lengths far apart within a pair
            handle.write(json.dumps(record) + "\n")
    seen: list[list[str]] = []
    collate = sft_render.collate
    monkeypatch.setattr(sft_render, "collate", lambda batch, pad: seen.append([s for t in batch for s in t.sources]) or collate(batch, pad))
    for bucket in (False, True):
        seen.clear()
        train(config(tiny_llama_dir, path, tmp_path / f"out{bucket}", batch_size=2, epochs=2, bucket=bucket))
        assert len(seen) == 14  # 7 steps x 2 epochs
        lines = [[int(s.rsplit(":", 1)[1]) - 1 for s in step] for step in seen]
        for pair in range(4):
            assert sum(sorted(step) == [2 * pair, 2 * pair + 1] for step in lines) == 2  # together, once per epoch
    with pytest.raises(UserError, match="batch_group 'g0' has 2 rows"):
        train(config(tiny_llama_dir, path, tmp_path / "one", batch_size=1))
