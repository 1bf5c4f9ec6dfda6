"""How long `llm-deeper --help` takes, against a bare Python start, side by side.

Prints one JSON object. The target is under 1 s: commands import torch and
transformers only when they run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from harness import alternate, report, timed

RUNS = 15


def main() -> None:
    cli = [os.path.join(os.path.dirname(sys.executable), "llm-deeper"), "--help"]
    bare = [sys.executable, "-c", "pass"]
    sides = {name: (lambda argv=argv: timed(lambda: subprocess.run(argv, check=True, capture_output=True))[0])
             for name, argv in (("llm-deeper --help", cli), ("python -c pass", bare))}
    samples = alternate(sides, RUNS)  # the warm-up run warms the file cache
    result = {
        "runs": RUNS,
        **{f"{name} median s": round(statistics.median(v), 4) for name, v in samples.items()},
        **{f"{name} max s": round(max(v), 4) for name, v in samples.items()},
        "target s": 1.0,
    }
    result["meets target"] = result["llm-deeper --help max s"] < 1.0
    report("cli_startup", result)


if __name__ == "__main__":
    main()
