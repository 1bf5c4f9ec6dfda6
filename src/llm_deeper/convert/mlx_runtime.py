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
