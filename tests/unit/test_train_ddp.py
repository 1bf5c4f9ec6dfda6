"""DDP and FSDP: 2 gloo processes with batch B end where 1 process with batch 2B ends (TinyGPT on the shared loop)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llm_deeper.data.corpus import fingerprint
from llm_deeper.ports import free_port
from llm_deeper.scratch.tinygpt import TinyGPTConfig
from llm_deeper.train.tinygpt.checkpoint import load_checkpoint
from llm_deeper.train.tinygpt.config import TrainConfig
from llm_deeper.train.tinygpt.pretrain import train
from llm_deeper.train.tinygpt.text import prepare

SHAPE = ["--layers", "2", "--heads", "2", "--embd", "32", "--context", "16"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """(text file, weights after 5 steps with batch 8 in one process, weights after 1 step at lr 0): run once for both shardings."""
    folder = tmp_path_factory.mktemp("ddp-text")
    text = folder / "small.txt"
    text.write_text("Line one of a small text for the DDP test.\nAnother line, with more words!\n" * 60)
    corpus, tok, data = prepare(text, "char", context=16)
    model_config = TinyGPTConfig(vocab_size=tok.vocab_size, context=16, n_layer=2, n_head=2, n_embd=32)
    cfg = TrainConfig(steps=5, batch_size=8, warmup_steps=2, lr=1e-3, min_lr=1e-4, eval_every=0, threads=1, device="cpu", dtype="float32")
    single = train(model_config, cfg, data, tok, None, data_fingerprint=fingerprint(corpus.train), show_progress=False)
    initial = train(model_config, TrainConfig(steps=1, lr=0.0, min_lr=0.0, eval_every=0, threads=1, device="cpu"), data, tok, None, show_progress=False)
    return text, single.model.state_dict(), initial.model.state_dict()


@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_processes_equal_one_process_with_double_batch(one_process, sharding, tmp_path):
    text, single, initial = one_process
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           "-m", "llm_deeper", "tinygpt", "train", "--text", str(text), "--tokenizer", "char", *SHAPE,
           "--steps", "5", "--batch-size", "4", "--warmup", "2", "--eval-every", "0", "--checkpoint-every", "0",
           "--threads", "1", "--device", "cpu", "--dtype", "float32", "--sharding", sharding, "--out", str(tmp_path / sharding)]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = load_checkpoint(tmp_path / sharding)
    assert ddp["world_size"] == 2 and ddp["step"] == 5 and ddp["train_config"]["sharding"] == sharding
    assert set(ddp["model"]) == set(single)  # FSDP's checkpoint is gathered whole, like one process's

    worst = max((single[k] - v).abs().max().item() for k, v in ddp["model"].items())
    assert worst < 1e-5
    # And the 5 steps moved the weights well beyond that tolerance (the comparison is not vacuous).
    moved = max((initial[k] - v).abs().max().item() for k, v in ddp["model"].items())
    assert moved > 1e-3
