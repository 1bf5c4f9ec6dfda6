"""The loss curve as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path


def save_loss_curve(losses: list[float], val_losses: list[tuple[int, float]], path: str | Path, title: str = "TinyGPT training") -> Path:
    """Train loss per step (faint), its running mean, and validation points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    steps = list(range(1, len(losses) + 1))
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="train (per step)")
    window = max(1, len(losses) // 50)
    smooth = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1]) for i in range(len(losses))]
    ax.plot(steps, smooth, color="tab:blue", label=f"train (mean of {window})")
    if val_losses:
        ax.plot([s for s, _ in val_losses], [v for _, v in val_losses], "o-", color="tab:orange", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
