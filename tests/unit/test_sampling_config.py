"""Sampling settings validate with messages that name the setting and its range."""

import pytest

from llm_deeper.errors import UserError
from llm_deeper.inference.sampling import SamplingConfig


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"max_new_tokens": 0}, "max new tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0.0}, "top-p"),
        ({"top_k": -1}, "top-k"),
        ({"repetition_penalty": 0.0}, "repetition penalty"),
    ],
)
def test_invalid_settings_raise(kwargs, fragment):
    with pytest.raises(UserError, match=fragment):
        SamplingConfig(**kwargs).validate()


def test_greedy_turns_sampling_off():
    kwargs = SamplingConfig(temperature=0.0, top_p=0.5).generate_kwargs()
    assert kwargs["do_sample"] is False and kwargs["top_p"] is None
    sampled = SamplingConfig(temperature=0.8, top_k=5).generate_kwargs()
    assert sampled["do_sample"] is True and sampled["top_k"] == 5 and sampled["temperature"] == 0.8
