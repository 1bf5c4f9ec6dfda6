"""LoRA fine-tuning with mlx-lm's own trainer (`mlx_lm lora --train`) on the project's JSONL data.

mlx-lm trains on a folder with train.jsonl and valid.jsonl in OpenAI chat
form ({"messages": [...]}), and applies the model's chat template itself. Our
conversations with tools first go through the shared tool renderer (the one
PEFT fine-tuning and the server use), so mlx-lm trains on the same text.
LoRA settings that have no command-line flag (rank, scale, keys) go in a
config file; JSON is valid YAML, which mlx-lm reads.

The run is a subprocess: mlx-lm's documented interface, and its memory is
returned when it ends. The adapter it writes converts to PEFT with
`convert.mlx_to_peft`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UserError

# mlx-lm's report lines: "   3    1.234 ▼    1,020    0.9k" (train) and "   3    val 1.301    0.52s"
REPORT = re.compile(r"^\s*(\d+)\s+(val\s+)?(\d+\.\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # mlx-lm colours its report even into a pipe


@dataclass
class MlxLoraConfig:
    """One mlx-lm LoRA run."""

    model: str  # registry name or HF folder of the base model
    train: Path  # training JSONL (our formats; tools allowed)
    valid: Path  # held-out JSONL (mlx-lm requires a validation set)
    output: Path  # adapter folder mlx-lm writes (adapter_config.json + adapters.safetensors)
    iters: int = 8  # optimizer steps
    batch_size: int = 2  # conversations per step
    num_layers: int = 8  # mlx-lm adapts the last num_layers decoder layers (-1: all)
    rank: int = 8  # LoRA rank
    scale: float = 2.0  # mlx-lm multiplies the update by this (PEFT's alpha / r)
    keys: list[str] = field(default_factory=lambda: ["self_attn.q_proj", "self_attn.v_proj"])  # modules per layer
    learning_rate: float = 1e-4  # Adam learning rate
    max_seq_length: int = 1024  # longer conversations are cut
    val_batches: int = 1  # validation batches, before the first step and after the last (0: no validation; a check that needs none saves two forward passes)
    seed: int = 0  # data order and adapter init


def write_mlx_data(train: Path, valid: Path, folder: Path) -> Path:
    """train.jsonl and valid.jsonl as mlx-lm reads them: {"messages": [...]} with tool parts rendered as text."""
    from ..data.sft import read_jsonl
    from ..chat_format import template_messages

    folder.mkdir(parents=True, exist_ok=True)
    for source, name in ((train, "train.jsonl"), (valid, "valid.jsonl")):
        lines = [json.dumps({"messages": template_messages(example.messages, example.tools)}, ensure_ascii=False) for example in read_jsonl(source)]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@dataclass
class MlxLoraResult:
    """What an mlx-lm LoRA run produced."""

    folder: Path  # the mlx-lm adapter folder
    train_losses: list[float]  # loss at each reported step
    val_losses: list[float]  # validation loss before training (step 1) and at the end
    seconds: float  # wall time of the subprocess


def train_mlx_lora(config: MlxLoraConfig, log: Callable[[str], None] = print) -> MlxLoraResult:
    """Run `python -m mlx_lm lora --train`; mlx-lm's report lines go to `log`."""
    import time

    from .lora_shapes import base_folder
    from .mlx_runtime import require_mlx

    require_mlx()
    output = Path(config.output)
    work = output.parent / f"{output.name}.mlx-data"
    data = write_mlx_data(Path(config.train), Path(config.valid), work)
    lora_file = work / "lora_config.yaml"
    lora_file.write_text(json.dumps({"lora_parameters": {"rank": config.rank, "scale": config.scale, "dropout": 0.0, "keys": config.keys}}), encoding="utf-8")
    command = [
        sys.executable, "-m", "mlx_lm", "lora", "--model", str(base_folder(config.model)), "--train", "--data", str(data),
        "--adapter-path", str(output), "--iters", str(config.iters), "--batch-size", str(config.batch_size),
        "--num-layers", str(config.num_layers), "--learning-rate", str(config.learning_rate), "--max-seq-length", str(config.max_seq_length),
        "--steps-per-report", "1", "--steps-per-eval", str(config.iters), "--val-batches", str(config.val_batches), "--save-every", str(config.iters),
        "--mask-prompt", "--seed", str(config.seed), "--config", str(lora_file),
    ]
    start = time.perf_counter()
    train_losses, val_losses = [], []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_quiet_env())
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        line = ANSI.sub("", line).rstrip()
        tail = (tail + [line])[-20:]
        report = REPORT.match(line)
        if report:
            (val_losses if report.group(2) else train_losses).append(float(report.group(3)))
            log("mlx-lm step " + " ".join(line.split()))
    if process.wait() != 0 or not (output / "adapters.safetensors").is_file():
        raise UserError(f"mlx_lm lora failed (exit {process.returncode}): {' | '.join(tail[-3:])}")
    return MlxLoraResult(folder=output, train_losses=train_losses, val_losses=val_losses, seconds=time.perf_counter() - start)


def _quiet_env() -> dict:
    import os

    return {**os.environ, "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
