"""Weight-only quantization for decoding: fewer bytes read per token.

A decode step reads every weight once and does little arithmetic with it, so
its speed follows the bytes read. Activations stay bfloat16; PyTorch's CPU
kernels multiply them by packed integer weights and apply the scales.

- `int8`: one int8 row per output with a per-row scale (1 byte a weight).
- `int4`: 4-bit values in groups of 32 inputs, each group with its own scale
  and minimum: GGUF's Q4_1 layout (about 0.6 bytes a weight with its scales).
  The default model's projections come from a Q4_1 file, so they quantize back
  to the GGUF's own numbers, and int4 costs no more than bf16 does (the same
  KL divergence to fp32, bench/RESULTS.md). Other models get Q4_1's rounding.

Both are explicit choices (`dtype="int8"` / `"int4"`): outputs differ slightly from fp32.
"""

from __future__ import annotations

from ..errors import UserError

QUANTIZATIONS = ("int8", "int4")


class Int8Weight:
    """A weight stored as int8 with one bf16 scale per output row."""

    def __init__(self, weight):
        import torch

        with torch.inference_mode():
            w = weight.float()
            scales = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-8)
            self.q = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
            self.scales = scales.to(torch.bfloat16)
        self.shape = weight.shape

    def matmul(self, x):
        import torch

        return torch.ops.aten._weight_int8pack_mm(x, self.q, self.scales)


class Int4Weight:
    """A weight stored as 4-bit integers, per group of 32 inputs: w = scale × q + minimum, q in 0..15."""

    GROUP = 32  # inputs per group (Q4_1's block size)

    def __init__(self, weight):
        import torch

        with torch.inference_mode():
            q, scale, low = q4_1_groups(weight, self.GROUP)
            self.packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.view(weight.shape).to(torch.int32), 2)
            # The kernel computes (q − 8) × scale + zero, so zero = minimum + 8 × scale; layout [groups, rows, 2].
            self.scales_and_zeros = torch.stack([scale, low + 8 * scale], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
        self.shape = weight.shape

    def matmul(self, x):
        import torch

        return torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.packed, self.GROUP, self.scales_and_zeros)


class PackedWeight:
    """A float32 weight laid out twice for this CPU's fast kernels: packed for oneDNN, and transposed.

    F.linear on float32 goes to MKL's sgemm with the weight as [out, in], which ran the decode
    step's matmuls at a fraction of what this AMD EPYC can do. Measured side by side (1 thread,
    load 5-7, bench/RESULTS.md):
    - several rows (a batched decode step, a prefill): oneDNN's kernels on a weight reordered
      once into its blocked layout (what inductor uses for frozen CPU linears). Every projection
      of the default model's 30 layers plus the LM head at 8 rows: 119.4 -> 54.9 ms; at 256
      rows 1,207 -> 975 ms; the engine's 8-row step 96.4 -> 65.3 ms.
    - one row (a single stream's step): on 2 threads the packed kernel too. Quiet, the step's
      matmuls (30 layers and the head) took 23.2 ms packed against 31.7 ms for x @ Wᵀ (MKL's
      gemv does not use the second thread), and one stream went 24.4 -> 28.6 tok/s in-process.
      On one thread x @ Wᵀ with Wᵀ stored [in, out] is the faster (30.3 against 35.1 ms; it was
      1.43x F.linear at 1 thread under load, the 1-row step 78.1 -> 54.5 ms).
    Memory: both copies, twice the projections and the LM head (1,076 MB for the default
    model, beside the model's own 538 MB). Results differ from F.linear by fp32 rounding only.
    """

    def __init__(self, weight):
        import torch

        with torch.inference_mode():
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), None)
            # [in, out], for one row on one thread; only fp32 has MKL's gemv to feed (a bf16 weight is packed only)
            self.transposed = weight.detach().t().contiguous() if weight.dtype == torch.float32 else None
        self.shape = weight.shape

    def matmul(self, x, bias=None, residual=None):
        """x @ weightᵀ (+ bias) (+ residual: added by oneDNN as the result is written, bit for bit the same sum)."""
        import torch

        if self.transposed is not None and x.numel() == x.shape[-1] and torch.get_num_threads() == 1:  # one row, one thread
            out = torch.matmul(x, self.transposed)
            out = out if bias is None else out + bias
            return out if residual is None else out.add_(residual)
        if residual is not None:
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self.packed, bias, "add")
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, "none", [], "")


def packing_pays(dtype) -> bool:
    """Whether float weights of `dtype` are packed for oneDNN here: float32 on x86-64 with oneDNN (see PackedWeight)."""
    import platform

    import torch

    return (dtype == torch.float32 and platform.machine().lower() in ("x86_64", "amd64")
            and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


def bf16_head_packing_pays() -> bool:
    """Whether int4's bf16 LM head is packed for oneDNN here: x86-64 with oneDNN's bf16 kernels (AVX-512 BF16 or AMX).

    The head is the biggest matmul of an int4 step (49,152 x 576 for the default model). Quiet, 2 threads, AMD EPYC
    with AVX512-BF16: one row 3.37 -> 1.10 ms, 8 rows 5.33 -> 1.85 ms against F.linear, the same numbers out.
    """
    import torch

    return packing_pays(torch.float32) and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def q4_1_groups(weight, group: int = 32):
    """Q4_1 rounding: (q [rows, groups, group] in 0..15, scale, minimum [rows, groups]); w ≈ scale × q + minimum."""
    import torch

    rows, columns = weight.shape
    if columns % group:
        raise UserError(f"int4 weights need input sizes divisible by {group}; this model has a {rows}×{columns} projection (use int8 or bfloat16)")
    groups = weight.float().view(rows, columns // group, group)
    low, high = groups.amin(-1), groups.amax(-1)
    # Q4_1 stores fp16 scales: rounding ours the same way gives a Q4_1 file's own q and scale back exactly.
    scale = ((high - low) / 15).half().float().clamp_min(1e-8)
    q = torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.uint8)
    return q, scale, low


def quantize(weight, kind: str | None, pack: bool = False):
    """The weight as `kind` ("int8", "int4") stores it; for None, packed for oneDNN if `pack`, else unchanged."""
    if kind is None:
        return PackedWeight(weight) if pack else weight
    if kind not in QUANTIZATIONS:
        raise UserError(f"unknown quantization {kind!r}; choose one of {', '.join(QUANTIZATIONS)}")
    return Int8Weight(weight) if kind == "int8" else Int4Weight(weight)


def linear(x, weight, bias=None, residual=None):
    """F.linear (+ `residual`, a tensor of the output's shape), or the packed kernel for a quantized or oneDNN-packed weight.

    A residual is added into the fresh output in place (fused into the oneDNN kernel for a packed
    weight): the same numbers as `residual + linear(x)`, without a second output tensor.
    """
    import torch.nn.functional as F

    if isinstance(weight, PackedWeight):
        return weight.matmul(x, bias, residual)
    if not isinstance(weight, (Int8Weight, Int4Weight)):
        out = F.linear(x, weight, bias)
    else:
        out = weight.matmul(x.reshape(-1, x.shape[-1]).contiguous()).view(*x.shape[:-1], weight.shape[0])
        out = out + bias if bias is not None else out
    return out if residual is None else out.add_(residual)
