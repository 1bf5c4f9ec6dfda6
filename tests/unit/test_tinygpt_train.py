"""TinyGPT training pieces: schedule, corpus, batches, checkpoint errors, CLI errors."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli

from llm_deeper.data.corpus import Corpus, default_corpus, file_corpus
from llm_deeper.errors import UserError
from llm_deeper.scratch.char_tokenizer import CharTokenizer
from llm_deeper.scratch.tinygpt import TinyGPT, TinyGPTConfig
from llm_deeper.train.tinygpt.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from llm_deeper.train.tinygpt.config import TrainConfig
from llm_deeper.train.tinygpt.pretrain import train
from llm_deeper.train.schedule import lr_at
from llm_deeper.train.tinygpt.text import TokenData, get_batch

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny models: a second thread only adds contention on a busy machine
TEXT = "Attention is all you need, said the paper; and the fox agreed.\n" * 50


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, lr=1e-3, min_lr=1e-4, warmup_steps=10)
    lrs = [lr_at(s, cfg) for s in range(120)]
    assert lrs[0] < lrs[5] < lrs[9] < 1e-3  # linear ramp
    assert lrs[10] == pytest.approx(1e-3)  # peak right after warmup
    assert all(a >= b for a, b in zip(lrs[10:100], lrs[11:100]))  # cosine never rises
    assert lrs[100] == lrs[119] == 1e-4  # floor after decay_steps


def test_default_corpus_is_deterministic_and_split():
    a, b = default_corpus(max_chars=60_000), default_corpus(max_chars=60_000)
    assert a.train == b.train and a.val == b.val
    assert a.documents >= 10 and 0.05 < len(a.val) / a.chars < 0.2
    assert "<|endoftext|>" in a.train and not set(a.val.split("<|endoftext|>")) & set(a.train.split("<|endoftext|>")) - {""}


def test_file_corpus_splits_90_10_and_rejects_bad_files(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("x" * 1000)
    corpus = file_corpus(path)
    assert len(corpus.train) == 900 and len(corpus.val) == 100
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe" * 100)
    with pytest.raises(UserError, match="not UTF-8"):
        file_corpus(tmp_path / "bin.txt")
    with pytest.raises(UserError, match="no such text file"):
        file_corpus(tmp_path / "missing.txt")


def test_batches_are_next_token_shifted_windows():
    ids = torch.arange(100)
    x, y = get_batch(ids, 6, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (6, 10)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    # rank slices of a world-2 global batch are the two halves of the world-1 batch of double size
    whole, _ = get_batch(ids, 6, 10, torch.Generator().manual_seed(1))
    r0, _ = get_batch(ids, 3, 10, torch.Generator().manual_seed(1), rank=0, world=2)
    r1, _ = get_batch(ids, 3, 10, torch.Generator().manual_seed(1), rank=1, world=2)
    assert torch.equal(torch.cat([r0, r1]), whole)


def test_training_lowers_the_loss_with_accumulation_and_clipping():
    corpus = Corpus("att", TEXT[:2500], TEXT[2500:], 1)
    tok = CharTokenizer.train(corpus.train, byte_fallback=False)
    data = TokenData.encode(corpus, tok, 16)
    cfg = TrainConfig(steps=30, batch_size=4, grad_accum=2, warmup_steps=3, lr=3e-3, min_lr=3e-4, eval_every=15, eval_batches=2, threads=1)
    result = train(TinyGPTConfig(vocab_size=tok.vocab_size, context=16, n_layer=1, n_head=2, n_embd=32), cfg, data, tok, show_progress=False)
    assert result.train_losses[-1] < result.train_losses[0] - 0.5
    assert [s for s, _ in result.eval_losses] == [15, 30] and result.eval_losses[1][1] < result.eval_losses[0][1]
    assert result.tokens_per_s > 0


def test_bf16_autocast_trains_and_stays_close_to_fp32():
    """bf16 autocast (the benchmark's speed-up) follows the fp32 loss curve closely."""
    corpus = Corpus("att", TEXT[:2500], TEXT[2500:], 1)
    tok = CharTokenizer.train(corpus.train, byte_fallback=False)
    data = TokenData.encode(corpus, tok, 16)
    model_config = TinyGPTConfig(vocab_size=tok.vocab_size, context=16, n_layer=1, n_head=2, n_embd=32)
    runs = [train(model_config, TrainConfig(steps=15, batch_size=4, warmup_steps=2, lr=3e-3, min_lr=3e-4, eval_every=0, eval_batches=2, threads=1,
                                              dtype="bfloat16" if bf16 else "float32"),
                  data, tok, show_progress=False) for bf16 in (False, True)]
    fp32, bf16 = runs
    assert bf16.train_losses[-1] < bf16.train_losses[0] - 0.3
    assert abs(bf16.eval_losses[-1][1] - fp32.eval_losses[-1][1]) < 0.1
    assert bf16.train_losses != fp32.train_losses  # autocast really changed the arithmetic


def test_corrupted_and_foreign_checkpoints_are_clear_errors(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="truncated or corrupted"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a TinyGPT checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(UserError, match="no checkpoint"):
        load_checkpoint(tmp_path / "empty")


def test_mismatched_checkpoint_is_refused_on_resume_and_load(tmp_path):
    corpus = Corpus("att", TEXT[:2500], TEXT[2500:], 1)
    tok = CharTokenizer.train(corpus.train, byte_fallback=False)
    data = TokenData.encode(corpus, tok, 16)
    small = TinyGPTConfig(vocab_size=tok.vocab_size, context=16, n_layer=1, n_head=2, n_embd=32)
    cfg = TrainConfig(steps=2, batch_size=2, eval_every=0, eval_batches=1, threads=1)
    train(small, cfg, data, tok, tmp_path, show_progress=False)
    wider = TinyGPTConfig(vocab_size=tok.vocab_size, context=16, n_layer=1, n_head=2, n_embd=64)
    with pytest.raises(UserError, match="model n_embd: checkpoint 32, now 64"):
        train(wider, TrainConfig(steps=4, batch_size=2, eval_every=0, threads=1), data, tok, tmp_path, resume=True, show_progress=False)
    ckpt = load_checkpoint(tmp_path)
    ckpt["model"] = TinyGPT(wider).state_dict()
    save_checkpoint(tmp_path / "checkpoint.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version", "path")})
    with pytest.raises(UserError, match="does not match"):
        model_from_checkpoint(tmp_path)


def test_cli_errors_are_one_line(tmp_path):
    missing = run_cli("tinygpt", "train", "--text", str(tmp_path / "nope.txt"), "--quick", env=ONE_THREAD)
    assert missing.returncode == 2 and "--text" in missing.stderr and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"garbage")
    corrupt = run_cli("tinygpt", "sample", str(tmp_path / "run"), env=ONE_THREAD)
    assert corrupt.returncode == 2 and "corrupted" in corrupt.stderr and "Traceback" not in corrupt.stderr


def test_cli_train_sample_export_round_trip(tmp_path):
    """The three commands chained on a tiny run: checkpoint → text → an HF folder `load_model` takes."""
    from llm_deeper.models.loaders import load_model

    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    run = tmp_path / "run"
    trained = run_cli("tinygpt", "train", "--text", str(text), "--tokenizer", "char", "--layers", "1", "--heads", "2", "--embd", "32",
                      "--context", "16", "--steps", "12", "--batch-size", "4", "--eval-every", "6", "--threads", "1", "--out", str(run), env=ONE_THREAD)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "val loss" in trained.stdout and (run / "checkpoint.pt").is_file() and (run / "loss.png").is_file()
    sampled = run_cli("tinygpt", "sample", str(run), "-p", "Attention", "-n", "20", "--seed", "0", "-t", "0", env=ONE_THREAD)
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert "Attention" in sampled.stdout and "sample 1: 20 tokens" in sampled.stdout
    exported = run_cli("tinygpt", "export", str(run), "--out", str(tmp_path / "hf"), env=ONE_THREAD)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "max |Δlogit|" in exported.stdout
    loaded = load_model(str(tmp_path / "hf"))
    assert type(loaded.model).__name__ == "LlamaForCausalLM"


def test_dtype_auto_picks_bf16_only_where_it_measured_faster(monkeypatch):
    import llm_deeper.hardware as hardware
    from llm_deeper.train.precision import resolve_dtype

    if torch.cuda.is_available():
        pytest.skip("on CUDA the GPU's bf16 support decides")
    measure = hardware.bf16_matmul_pays.__wrapped__  # the uncached function
    monkeypatch.setattr(hardware, "bf16_matmul_pays", lambda: True)
    assert resolve_dtype("auto", "cpu") == "bfloat16" and resolve_dtype(None, "cpu") == "bfloat16"
    assert resolve_dtype("float32", "cpu") == "float32"  # asked for: opt out
    monkeypatch.setattr(hardware, "bf16_matmul_pays", lambda: False)
    assert resolve_dtype("auto", "cpu") == "float32"
    monkeypatch.setattr(hardware, "native_bf16", lambda: False)
    assert measure() is False  # no bf16 units: emulated bf16 never pays, nothing measured
    with pytest.raises(UserError, match="use auto, bfloat16 or float32"):
        resolve_dtype("fp8", "cpu")


def test_bf16_measurement_is_kept_per_machine_so_every_process_agrees(monkeypatch, tmp_path):
    import json

    import llm_deeper.hardware as hardware

    monkeypatch.setenv("LLM_DEEPER_HOME", str(tmp_path))
    monkeypatch.setattr(hardware, "native_bf16", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    answers = iter([True, False])  # a busy machine could flip a second timing
    monkeypatch.setattr(hardware, "_measure_bf16_matmul", lambda: next(answers))
    measure = hardware.bf16_matmul_pays.__wrapped__
    assert measure() is True
    assert measure() is True  # read back, not measured again
    assert list(json.loads((tmp_path / "hardware.json").read_text()).values()) == [True]


def test_auto_threads_counts_the_tasks_running_now_not_the_lagging_average(monkeypatch):
    """Right after a job ends, the 1-minute load average still reads busy; the runnable count does not."""
    import builtins
    import io

    import torch

    from llm_deeper.train import distributed

    reads = iter(["1.90 1.50 1.20 1/300 999\n"] * 10 + ["0.10 0.50 1.20 3/300 999\n"] * 5)
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: io.StringIO(next(reads)) if path == "/proc/loadavg" else real_open(path, *a, **k))
    monkeypatch.setattr(distributed.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert distributed.busy_cores(gap_s=0) == 0  # only our own reader runs, though the average says 1.9
    assert distributed.auto_threads() == 2
    assert distributed.auto_threads() == 1  # two other tasks hold both cores now: one thread, never zero
