"""Sampling settings shared by the CLI, the server and the lessons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UserError
from .stops import check_stops

if TYPE_CHECKING:
    from .constrained import Constraint


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick each next token."""

    max_new_tokens: int = 256  # stop after this many generated tokens
    temperature: float = 0.0  # 0 means greedy; higher flattens the distribution
    top_p: float = 1.0  # nucleus sampling: keep the smallest set with this much mass
    top_k: int = 0  # keep only the k most likely tokens (0 = off)
    repetition_penalty: float = 1.0  # >1 discourages tokens already in the context
    seed: int | None = None  # fixes the random stream for reproducible samples
    frequency_penalty: float = 0.0  # OpenAI-style: subtract this × (times a token already appeared in the reply)
    presence_penalty: float = 0.0  # OpenAI-style: subtract this once from every token already in the reply
    stop: tuple[str, ...] = ()  # stop strings: generation ends before the first one (not included in the text)
    stop_token_ids: tuple[int, ...] = ()  # extra token ids that end generation (the model's EOS ids always do)
    ignore_eos: bool = False  # keep going past EOS until max_new_tokens (benchmarks want fixed lengths)
    constraint: "Constraint | None" = None  # the one grammar the reply is held to (JSON, a schema, tool calls), see constrained.py

    def validate(self) -> "SamplingConfig":
        """Raise a `UserError` naming the first bad setting and its valid range."""
        if self.max_new_tokens < 1:
            raise UserError(f"max new tokens must be at least 1, got {self.max_new_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise UserError(f"temperature must be between 0 and 2, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise UserError(f"top-k must be 0 (off) or positive, got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise UserError(f"repetition penalty must be positive, got {self.repetition_penalty}")
        for name in ("frequency_penalty", "presence_penalty"):
            if not -2.0 <= getattr(self, name) <= 2.0:
                raise UserError(f"{name.replace('_', ' ')} must be between -2 and 2, got {getattr(self, name)}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise UserError("stop strings must be non-empty strings")
        try:
            check_stops(self.stop)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if self.constraint is not None:
            from .constrained import Constraint

            if not isinstance(self.constraint, Constraint):
                raise UserError(f"the constraint must be an inference.constrained.Constraint, got {type(self.constraint).__name__}")
        return self

    @property
    def greedy(self) -> bool:
        """True when decoding picks the arg-max token each step."""
        return self.temperature == 0.0

    def generate_kwargs(self) -> dict:
        """Keyword arguments for transformers' `generate`."""
        kwargs: dict = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty}
        if self.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or None)
        return kwargs
