"""`torchrun --nproc_per_node 2 ... finetune` (gloo, CPU) equals one process with the doubled batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from pytest import approx
from conftest import REPO
from safetensors.torch import load_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_with_double_batch(tiny_llama_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    with data.open("w") as handle:
        for i in range(16):  # uneven lengths: ranks see different token counts, the loss must still agree
            handle.write(json.dumps({"prompt": f"say {i}" + " x" * (i % 4), "completion": f"{i}" * (1 + i % 3)}) + "\n")
    common = ["finetune", "--data", str(data), "--model", str(tiny_llama_dir), "--method", "full", "--lr", "1e-3",
              "--epochs", "1", "--max-length", "64", "--seed", "3", "--grad-accum", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "llm_deeper", *common, "--batch-size", "4", "--output", str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                          "--master_port", str(free_port()), "-m", "llm_deeper", *common, "--batch-size", "2", "--output", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one, two = (json.loads((tmp_path / name / "train_result.json").read_text()) for name in ("one", "two"))
    assert one["steps"] == two["steps"] == 2
    assert two["train_losses"] == approx(one["train_losses"], abs=1e-5)
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    initial = load_file(tiny_llama_dir / "model.safetensors")
    assert max(float((a[k] - initial[k]).abs().max()) for k in a) > 1e-4  # training did move the weights


@pytest.mark.parametrize("method", ["full", "lora"])
def test_fsdp_two_processes_match_one_and_halve_the_state(tiny_llama_dir, tmp_path, method):
    """FSDP (fully_shard, gloo): the same losses and weights as one process, each rank holding ~half the parameters and Adam state."""
    data = tmp_path / "train.jsonl"
    with data.open("w") as handle:
        for i in range(16):
            handle.write(json.dumps({"prompt": f"say {i}" + " x" * (i % 4), "completion": f"{i}" * (1 + i % 3)}) + "\n")
    common = ["finetune", "--data", str(data), "--model", str(tiny_llama_dir), "--method", method, "--lr", "1e-3", "--dropout", "0",
              "--epochs", "1", "--max-length", "64", "--seed", "3", "--grad-accum", "2", "--dtype", "float32", "--save-every", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "llm_deeper", *common, "--batch-size", "4", "--output", str(tmp_path / "one")],
                            capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert single.returncode == 0, single.stderr[-2000:]
    fsdp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                           "--master_port", str(free_port()), "-m", "llm_deeper", *common, "--batch-size", "2", "--sharding", "fsdp",
                           "--output", str(tmp_path / "two")], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert fsdp.returncode == 0, fsdp.stderr[-2000:]
    one, two = (json.loads((tmp_path / name / "train_result.json").read_text()) for name in ("one", "two"))
    assert two["sharding"] == "fsdp" and two["world"] == 2 and one["steps"] == two["steps"] == 2
    assert two["train_losses"] == approx(one["train_losses"], abs=1e-5)
    name = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    a, b = load_file(tmp_path / "one" / name), load_file(tmp_path / "two" / name)
    assert sorted(a) == sorted(b) and max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    # Rank 0's share of parameters + optimizer state: about half of what one process holds (shards are padded to equal size).
    share = (two["param_mb"] + two["optimizer_mb"]) / (one["param_mb"] + one["optimizer_mb"])
    assert 0.45 < share < 0.6, share
