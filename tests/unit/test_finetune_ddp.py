"""`torchrun --nproc_per_node 2 ... finetune` (gloo, CPU) equals one process with the doubled batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest import approx
from conftest import REPO
from safetensors.torch import load_file

from llm_deeper.ports import free_port

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}



def common_args(data: Path, model: Path, method: str) -> list[str]:
    # --dropout and --dtype only matter for LoRA (full fine-tuning has no dropout and trains in fp32);
    # --save-every 1 also checkpoints every step, which must not change the result
    return ["finetune", "--data", str(data), "--model", str(model), "--method", method, "--lr", "1e-3", "--dropout", "0",
            "--epochs", "1", "--max-length", "64", "--seed", "3", "--grad-accum", "2", "--dtype", "float32", "--save-every", "1"]


def one_process(common: list[str], out: Path) -> dict:
    single = subprocess.run([sys.executable, "-m", "llm_deeper", *common, "--batch-size", "4", "--output", str(out)],
                            capture_output=True, text=True, timeout=300, cwd=REPO, env=ENV)
    assert single.returncode == 0, single.stderr[-2000:]
    return json.loads((out / "train_result.json").read_text())


def two_processes(common: list[str], out: Path, *extra: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                          "--master_port", str(free_port()), "-m", "llm_deeper", *common, "--batch-size", "2", *extra, "--output", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=REPO, env=ENV)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((out / "train_result.json").read_text())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp-data") / "train.jsonl"
    with path.open("w") as handle:
        for i in range(16):  # uneven lengths: ranks see different token counts, the loss must still agree
            handle.write(json.dumps({"prompt": f"say {i}" + " x" * (i % 4), "completion": f"{i}" * (1 + i % 3)}) + "\n")
    return path


@pytest.fixture(scope="module")
def one_full(tiny_llama_dir, data, tmp_path_factory) -> tuple[Path, dict]:
    """The one-process full fine-tune (batch 4) that DDP and FSDP are both compared with: run once for the module."""
    out = tmp_path_factory.mktemp("ddp-one-full") / "one"
    return out, one_process(common_args(data, tiny_llama_dir, "full"), out)


def test_two_processes_match_one_with_double_batch(tiny_llama_dir, data, one_full, tmp_path):
    (one_dir, one), common = one_full, common_args(data, tiny_llama_dir, "full")
    two = two_processes(common, tmp_path / "two")
    assert one["steps"] == two["steps"] == 2
    # All-reduce averages the two halves' gradients in another order than one process sums them: fp32 rounding of
    # losses ~5 over 2 steps (4·eps·√batch·5 ≈ 1e-5 at most) and of weights O(0.1).
    assert two["train_losses"] == approx(one["train_losses"], abs=1e-5)
    a, b = load_file(one_dir / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    initial = load_file(tiny_llama_dir / "model.safetensors")
    assert max(float((a[k] - initial[k]).abs().max()) for k in a) > 1e-4  # training did move the weights


@pytest.mark.parametrize("method", ["full", "lora"])
def test_fsdp_two_processes_match_one_and_halve_the_state(tiny_llama_dir, data, one_full, tmp_path, method):
    """FSDP (fully_shard, gloo): the same losses and weights as one process, each rank holding ~half the parameters and Adam state."""
    common = common_args(data, tiny_llama_dir, method)
    if method == "full":
        one_dir, one = one_full
    else:
        one_dir, one = tmp_path / "one", one_process(common, tmp_path / "one")
    two = two_processes(common, tmp_path / "two", "--sharding", "fsdp")
    assert two["sharding"] == "fsdp" and two["world"] == 2 and one["steps"] == two["steps"] == 2
    assert two["train_losses"] == approx(one["train_losses"], abs=1e-5)
    name = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    a, b = load_file(one_dir / name), load_file(tmp_path / "two" / name)
    assert sorted(a) == sorted(b) and max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    # Rank 0's share of parameters + optimizer state: about half of what one process holds (shards are padded to equal size).
    share = (two["param_mb"] + two["optimizer_mb"]) / (one["param_mb"] + one["optimizer_mb"])
    assert 0.45 < share < 0.6, share
