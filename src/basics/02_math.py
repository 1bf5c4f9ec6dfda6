"""The math under attention and training: softmax, log-sum-exp, cross-entropy, perplexity, √d_k.

What you learn: why the textbook softmax overflows and how subtracting the
maximum (the log-sum-exp trick) fixes it exactly; cross-entropy as the
negative log-probability of the right token and its gradient softmax − one-hot;
perplexity = exp(loss); and, measured rather than asserted, why attention
divides its scores by √d_k.

Run:  python src/basics/02_math.py      (or: llm-deeper lessons run basics/02)
Time: about 3 s (under 1 s with --quick).
"""

# %% Softmax, the naive way and the stable way
import numpy as np
import torch
import torch.nn.functional as F

from llm_deeper.lesson import check, close, done, is_quick, section, show
from llm_deeper.scratch.attention import (
    cross_entropy,
    cross_entropy_grad,
    finite_difference_grad,
    logsumexp,
    perplexity,
    relative_error,
    softmax,
    softmax_naive,
)

section("Softmax turns scores into probabilities")
scores = np.array([2.0, 1.0, 0.1])
p = softmax(scores)
show("scores", scores)
show("softmax(scores)", np.round(p, 4))
check("probabilities are positive and sum to 1", bool(np.all(p > 0)) and np.isclose(p.sum(), 1.0))
check("the order of the scores is kept", bool(np.all(np.argsort(p) == np.argsort(scores))))
check("adding a constant to every score changes nothing", np.allclose(softmax(scores + 100.0), p))

big = np.array([1000.0, 1001.0, 1002.0])
naive = softmax_naive(big)
show("softmax_naive([1000, 1001, 1002])", naive)
check("the naive formula overflows: exp(1000) = inf, inf/inf = nan", bool(np.isnan(naive).all()))
stable = softmax(big)
show("softmax([1000, 1001, 1002])", np.round(stable, 4))
check("the stable form (subtract the max first) gives the right answer", *close(stable, softmax(big - 1000.0), atol=1e-15))
check("…and equals torch.softmax", *close(stable, torch.softmax(torch.tensor(big), -1), atol=1e-15))

# %% Log-sum-exp
section("log-sum-exp: log Σ exp(x) = m + log Σ exp(x − m)")
small = np.array([0.5, -1.0, 2.0])
show("logsumexp([0.5, -1, 2])", round(float(logsumexp(small)), 6))
check("equals the direct formula where that one works", np.isclose(logsumexp(small), np.log(np.exp(small).sum())))
show("logsumexp([1000, 1001, 1002])", round(float(logsumexp(big)), 6))
check("stays finite where the direct formula gives inf", np.isfinite(logsumexp(big)) and np.isclose(logsumexp(big), 1000 + logsumexp(big - 1000)))
check("log softmax = x − logsumexp(x), exact even for huge scores", *close(big - logsumexp(big), F.log_softmax(torch.tensor(big), -1), atol=1e-12))

# %% Cross-entropy and perplexity
section("Cross-entropy: −log p(correct token), averaged")
vocab = 10
rng = np.random.default_rng(0)
logits = rng.standard_normal((6, vocab)) * 2  # 6 positions, a 10-word vocabulary
targets = rng.integers(0, vocab, size=6)  # the tokens that really came next
loss = cross_entropy(logits, targets)
by_hand = float(np.mean([-np.log(softmax(logits[i])[targets[i]]) for i in range(6)]))
show("logits.shape (positions, vocab)", logits.shape)
show("targets", targets)
show("cross-entropy (nats)", round(loss, 4))
check("equals the mean of −log softmax(logits)[target]", np.isclose(loss, by_hand))
check("equals torch.nn.functional.cross_entropy", np.isclose(loss, F.cross_entropy(torch.tensor(logits), torch.tensor(targets)).item(), atol=1e-12))
show("perplexity = exp(loss)", round(perplexity(loss), 3))

uniform = np.zeros((4, vocab))  # a model that knows nothing: every token equally likely
show("loss of a uniform guess", round(cross_entropy(uniform, np.arange(4)), 4))
check("a uniform guess scores ln(vocab), perplexity = vocab", np.isclose(cross_entropy(uniform, np.arange(4)), np.log(vocab)) and np.isclose(perplexity(cross_entropy(uniform, np.arange(4))), vocab))
confident = np.full((4, vocab), -20.0)
confident[np.arange(4), np.arange(4)] = 20.0
check("a confident, correct model has loss ≈ 0, perplexity ≈ 1", perplexity(cross_entropy(confident, np.arange(4))) < 1.0 + 1e-12)
show("a 49,152-token vocabulary guessed uniformly", f"loss {np.log(49152):.2f}, perplexity 49152 (where training starts)")

# %% The gradient of cross-entropy
section("Gradient: d loss / d logits = (softmax − one-hot) / N")
grad = cross_entropy_grad(logits, targets)
numeric = finite_difference_grad(lambda z: cross_entropy(z, targets), logits)
show("relative error against finite differences", f"{relative_error(grad, numeric):.1e}")
check("the analytic gradient matches finite differences", relative_error(grad, numeric) < 1e-7)
t_logits = torch.tensor(logits, requires_grad=True)
F.cross_entropy(t_logits, torch.tensor(targets)).backward()
check("…and torch autograd", relative_error(grad, t_logits.grad.numpy()) < 1e-12)
check("each row's gradient sums to 0 (probability moves, it is not created)", np.allclose(grad.sum(-1), 0))

# %% Why √d_k
section("Why divide by √d_k: the variance of dot products grows with d")
samples = 500 if is_quick() else 4000
print(f"  q, k with independent N(0, 1) entries, {samples} samples per size")
print("      d_k   var(q·k)   var(q·k / √d_k)")
for d in (4, 16, 64, 256, 1024):
    q, k = rng.standard_normal((samples, d)), rng.standard_normal((samples, d))
    dots = np.sum(q * k, axis=-1)
    print(f"  {d:7d}   {dots.var():8.1f}   {(dots / np.sqrt(d)).var():8.3f}")
    check(f"d_k={d}: var(q·k) ≈ d_k and var(q·k/√d_k) ≈ 1", abs(dots.var() / d - 1) < 0.15 and abs((dots / np.sqrt(d)).var() - 1) < 0.15)

d, seq = 512, 16
q, k = rng.standard_normal((samples // 20, seq, d)), rng.standard_normal((samples // 20, seq, d))
raw = q @ np.swapaxes(k, -1, -2)
for name, s in (("unscaled", raw), ("scaled", raw / np.sqrt(d))):
    p = softmax(s)
    jac = np.einsum("...i,ij->...ij", p, np.eye(seq)) - p[..., :, None] * p[..., None, :]  # d softmax / d scores
    show(f"{name}: mean largest weight, mean |Jacobian|", f"{p.max(-1).mean():.2f}, {np.abs(jac).sum((-1, -2)).mean():.3f}")
    if name == "unscaled":
        peak, jac_raw = p.max(-1).mean(), np.abs(jac).sum((-1, -2)).mean()
    else:
        peak_scaled, jac_scaled = p.max(-1).mean(), np.abs(jac).sum((-1, -2)).mean()
check("unscaled scores saturate the softmax (one key takes almost all the weight)", peak > 0.85 and peak_scaled < 0.5, f"{peak:.2f} vs {peak_scaled:.2f}")
check("a saturated softmax passes back far smaller gradients", jac_scaled > 5 * jac_raw, f"{jac_scaled / jac_raw:.0f}× larger when scaled")

done()
