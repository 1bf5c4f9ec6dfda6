"""Run a model (and adapter) with mlx-lm: availability, logits for parity checks, greedy decoding.

MLX runs on Metal on Apple silicon and on the CPU on Linux (`mlx[cpu]`, part of
the default install where wheels exist). Where it cannot be imported,
`mlx_status()` says why, and the tests, lessons and speedrun stage that need it
skip with that reason.
"""

from __future__ import annotations

from pathlib import Path


def mlx_status() -> tuple[bool, str]:
    """(usable, reason): whether mlx and mlx-lm import here, and why not."""
    try:
        import mlx.core as mx  # noqa: F401
        import mlx_lm  # noqa: F401
    except Exception as exc:  # ImportError, or a broken native library (OSError)
        import platform

        return False, (f"mlx/mlx-lm cannot be imported on {platform.system()} {platform.machine()} ({type(exc).__name__}: {exc}); "
                       "the default install adds them on Linux x86-64/arm64 and macOS arm64")
    return True, f"mlx {mx.__version__} on {mx.default_device()}"


def require_mlx() -> None:
    """Raise a one-line UserError when MLX is not usable here."""
    from ..errors import UserError

    ok, reason = mlx_status()
    if not ok:
        raise UserError(reason)


def load_mlx(model_folder: str | Path, adapter: str | Path | None = None):
    """(model, tokenizer) from mlx-lm, with an mlx-lm adapter folder applied if given."""
    require_mlx()
    from mlx_lm import load

    return load(str(model_folder), adapter_path=str(adapter) if adapter else None)


def mlx_logits(model, ids: list[int]):
    """Next-token logits at every position of `ids` (numpy float32, (len(ids), vocab))."""
    import mlx.core as mx
    import numpy as np

    logits = model(mx.array([ids]))[0].astype(mx.float32)
    mx.eval(logits)
    return np.array(logits)


def mlx_greedy(model, tokenizer, prompt_ids: list[int], max_tokens: int) -> list[int]:
    """Greedy continuation of `prompt_ids` through mlx-lm's own generator (stops at end of turn)."""
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    out = []
    for response in stream_generate(model, tokenizer, prompt_ids, max_tokens=max_tokens, sampler=make_sampler(temp=0.0)):
        if response.token is not None and response.finish_reason != "stop":
            out.append(int(response.token))
    return out


class MlxLmServer:
    """`mlx_lm server` (mlx-lm's own OpenAI-compatible server) in a subprocess on a free loopback port.

    Use as a context manager; `url` is the base URL for the `openai` client
    (`<url>/v1`). Requests name the model "default_model": mlx-lm loads any
    other name as a new model path.
    """

    def __init__(self, model_folder: str | Path, adapter: str | Path | None = None, startup_timeout: float = 300.0):
        self.model_folder, self.adapter, self.startup_timeout = Path(model_folder), adapter, startup_timeout
        from ..ports import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.log = None

    def __enter__(self) -> "MlxLmServer":
        import os
        import subprocess
        import sys
        import time
        import urllib.request

        require_mlx()
        command = [sys.executable, "-m", "mlx_lm", "server", "--model", str(self.model_folder), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.adapter:
            command += ["--adapter-path", str(self.adapter)]
        import tempfile

        self.log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a full pipe would stall the server
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log, text=True,
                                        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                error = self.log.read().strip().splitlines()
                self.log.close()
                raise RuntimeError(f"mlx_lm server exited with {self.process.returncode}: {error[-1] if error else 'no output'}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"mlx_lm server did not answer on {self.url} within {self.startup_timeout:.0f} s")

    def __exit__(self, *exc) -> None:
        import subprocess

        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None and not self.log.closed:
            self.log.close()
