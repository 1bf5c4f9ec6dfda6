"""bench/q4_1_matmul.c, bench_int4_matmul.py's hand-written candidate: its layout and numbers against a dequantized fp32 matmul."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_int4_matmul  # noqa: E402

from llm_deeper.inference.quant import q4_1_groups  # noqa: E402


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    built = bench_int4_matmul.our_kernel(tmp_path_factory.mktemp("q4_1_matmul"))
    if built is None:
        pytest.skip("the kernel needs AVX512-BF16 and gcc")
    return built


@pytest.mark.parametrize("name", list(bench_int4_matmul.SHAPES))
@pytest.mark.parametrize("rows", [1, 6])  # one stream; a batch that fills one pass of 4 rows and part of the next
def test_our_kernel_gives_the_dequantized_matmul_within_bf16_rounding(kernel, name, rows):
    out, inputs = bench_int4_matmul.SHAPES[name]
    torch.manual_seed(rows)
    weight = torch.randn(out, inputs) * 0.02
    q, scale, low = q4_1_groups(weight)
    # the kernel reads bf16 scales and minimums: the exact weight it multiplies by
    exact = (q.float() * scale.bfloat16().float()[..., None] + low.bfloat16().float()[..., None]).view(out, inputs)
    x = torch.randn(rows, inputs).bfloat16()
    reference = x.float() @ exact.t()
    y = bench_int4_matmul.build("ours", weight, kernel)(x)
    assert y.dtype == torch.bfloat16 and y.shape == (rows, out)
    # one rounding to bf16 (half a unit in the last place, 2⁻⁹ relative, doubled), and fp32 sums of K terms whose
    # rounding errors add up like a random walk: 4·√K·2⁻²⁴ of Σ|terms|, the kernel's 128 + q products included.
    # Measured: at most 0.68 of this bound; -127.99 for the -128 that takes the 128 back out exceeds it (1.1-1.2).
    terms = x.float().abs() @ (exact.abs() + 128 * scale.bfloat16().float().repeat_interleave(32, dim=1)).t()
    bound = reference.abs() * 2**-8 + 4 * inputs**0.5 * 2**-24 * terms
    assert ((y.float() - reference).abs() <= bound).all()


def test_the_layout_puts_four_groups_in_64_bytes_and_a_last_pair_in_32():
    q = torch.arange(6 * 32).remainder(16).view(1, 6 * 32).to(torch.uint8)  # 6 groups: one block of four, one pair
    packed = bench_int4_matmul.pack_ours(q)
    assert packed.shape == (1, 6 * 16)
    words = packed[0, :64].view(torch.int16).int() & 0xFFFF
    element = 5
    assert words[element] == sum(int(q[0, 32 * g + element]) << (4 * g) for g in range(4))
    assert packed[0, 64 + element] == int(q[0, 4 * 32 + element]) | int(q[0, 5 * 32 + element]) << 4
