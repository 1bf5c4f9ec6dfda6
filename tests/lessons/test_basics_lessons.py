"""Week 1 lessons (src/basics/) run as scripts in quick mode: exit 0, their key claims printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASICS = REPO / "src" / "basics"

# lesson file → lines it must print (each claim line starts with ✓ when it was checked)
KEY_LINES = {
    "00_pandas.py": ["✓ every text round-trips through the tokenizer", "✓ group sizes add up to the data set", "token_lengths.png"],
    "01_numpy.py": ["✓ one @ equals a Python loop over batch and heads", "✓ einsum scores equal q @ kᵀ", "(batch, heads, seq, head_dim): (2, 3, 5, 4)"],
    "02_math.py": ["✓ the naive formula overflows", "✓ the stable form (subtract the max first) gives the right answer", "✓ d_k=1024: var(q·k) ≈ d_k", "✓ a saturated softmax passes back far smaller gradients"],
    "03_attention_math.py": ["Weights after the softmax", "✓ the future gets exactly 0", "✓ torch.nn.functional.scaled_dot_product_attention(is_causal=True) agrees"],
    "04_attention_impl.py": ["✓ fp64: numpy attention equals PyTorch", "✓ fp32: numpy attention equals PyTorch", "✓ dQ equals torch autograd", "✓ dK equals central finite differences", "✓ a padded sequence gives the same outputs as running it alone"],
    "05_attention_positional_encoding.py": ["✓ attention(shuffled x) == shuffled attention(x)", "✓ relative-position property", "✓ our rotated queries equal transformers'", "✓ with RoPE, shuffling the tokens changes the attention outputs"],
    "06_mha.py": ["✓ our numpy MHA equals torch.nn.MultiheadAttention", "✓ GQA (8 query heads, 2 KV heads) equals repeating each KV head", "✓ our GQA parameter count equals the real layer's"],
    "07_conclusion.py": ["✓ pre-LN: our numpy block equals nn.TransformerEncoderLayer", "✓ post-LN: our numpy block equals nn.TransformerEncoderLayer", "✓ causal: appending tokens leaves the earlier outputs unchanged", "logits (seq, vocab): ("],
}


# These read the default model's files (tokenizer, embedding table, tensor shapes), converted on first use.
USES_DEFAULT_MODEL = {"00_pandas.py", "06_mha.py", "07_conclusion.py"}
CASES = [pytest.param(name, marks=pytest.mark.slow) if name in USES_DEFAULT_MODEL else name for name in sorted(KEY_LINES)]


def test_every_lesson_of_the_week_is_covered():
    assert sorted(p.name for p in BASICS.glob("[0-9][0-9]_*.py")) == sorted(KEY_LINES)


@pytest.mark.parametrize("name", CASES)
def test_lesson_runs_and_prints_its_checks(name):
    env = {**os.environ, "LLM_DEEPER_QUICK": "1"}
    result = subprocess.run([sys.executable, str(BASICS / name)], capture_output=True, text=True, timeout=120, env=env, cwd=BASICS)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "✗" not in result.stdout
    for line in KEY_LINES[name]:
        assert line in result.stdout, f"{name} did not print {line!r}"
    done = re.search(r"Done: (\d+) checks passed", result.stdout)
    assert done and int(done.group(1)) >= 10, result.stdout[-500:]
    if name == "00_pandas.py":  # the histogram lands under the artifact base folder, as a real PNG
        png = Path(re.search(r"→ wrote (\S+token_lengths\.png)", result.stdout).group(1))
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
        assert str(png).startswith(os.environ["LLM_DEEPER_HOME"])
