"""Checkpoints that prove themselves: atomic writes, a content checksum, clear errors.

Shared by TinyGPT (one `checkpoint.pt`) and fine-tuning (`checkpoint-STEP/state.pt`
folders, the newest N kept).

- Atomic: `torch.save` to a temporary name in the same folder, fsync the file,
  `os.replace` it over the real name, fsync the folder. A kill at any moment
  leaves the previous checkpoint or the new one, never a torn file under the
  real name. A killed writer leaves its temporary file behind: the next run
  removes it (`remove_stale_temps`).
- Checksummed: the payload carries a SHA-256 of its own content (every tensor's
  bytes, every other value's repr), recomputed on load. torch.load does not check
  the zip's CRCs: a checkpoint with 400 flipped bytes in its tensors loaded
  silently before; now it is refused with one line.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import torch

from ..errors import UserError

CHECKSUM_KEY = "sha256"  # the payload's own digest, stored beside its content
TEMP_PATTERN = re.compile(r"^\..+\.(\d+)\.tmp$")  # .NAME.<pid>.tmp: what save_atomic writes before the rename


def content_digest(value) -> str:
    """SHA-256 over a nested payload: tensors by dtype, shape and bytes; other leaves by repr."""
    digest = hashlib.sha256()

    def walk(item) -> None:
        if isinstance(item, torch.Tensor):
            flat = item.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{item.dtype}{tuple(item.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
        elif isinstance(item, dict):
            digest.update(b"{")
            for key, sub in item.items():
                digest.update(repr(key).encode())
                walk(sub)
            digest.update(b"}")
        elif isinstance(item, (list, tuple)):
            digest.update(b"[" if isinstance(item, list) else b"(")
            for sub in item:
                walk(sub)
            digest.update(b"]")
        else:
            digest.update(repr(item).encode())

    walk(value)
    return digest.hexdigest()


def fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(path: str | Path, payload: dict) -> Path:
    """Write `payload` plus its checksum to `path`: temporary name, fsync, rename, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save({**payload, CHECKSUM_KEY: content_digest(payload)}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_verified(path: str | Path, what: str, fix: str) -> dict:
    """Read a checkpoint written by `save_atomic`; a truncated, corrupted or foreign file is one `UserError` line.

    `what` names the checkpoint in the message ("TinyGPT checkpoint"), `fix` says what to do about it.
    """
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"{what} {path} is truncated or corrupted ({first}): {fix}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a {what}: {fix}")
    stored = data.pop(CHECKSUM_KEY, None)
    if stored is None:
        raise UserError(f"{path} has no checksum, so it is not a {what} this llm-deeper wrote: {fix}")
    if content_digest(data) != stored:
        raise UserError(f"{what} {path} is corrupted (its content no longer matches the checksum written with it): {fix}")
    return data


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete `.NAME.<pid>.tmp` files whose writer is gone (a run killed mid-save); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for item in folder.iterdir():
        match = TEMP_PATTERN.match(item.name)
        if match and item.is_file() and not pid_alive(int(match.group(1))):
            item.unlink(missing_ok=True)
            removed.append(item)
    return removed


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own earlier file from this process: nobody writes it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class StepCheckpoints:
    """`folder/checkpoint-STEP/state.pt`, the newest `keep` kept: fine-tuning's checkpoints."""

    PATTERN = re.compile(r"checkpoint-(\d+)$")
    FILE = "state.pt"

    def __init__(self, folder: str | Path, keep: int = 1):
        self.folder = Path(folder)
        self.keep = keep  # checkpoints kept (a full fine-tune's is ~3× the model size with Adam's moments)

    def all(self) -> list[Path]:
        """Checkpoint folders in step order (only those whose state file was renamed into place)."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := self.PATTERN.match(p.name)) and (p / self.FILE).is_file()]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    def save(self, step: int, payload: dict) -> Path:
        """Write checkpoint-STEP atomically, then prune all but the newest `keep`."""
        folder = self.folder / f"checkpoint-{step}"
        save_atomic(folder / self.FILE, payload)
        for old in self.all()[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    def load(self, folder: Path, fix: str) -> dict:
        return load_verified(Path(folder) / self.FILE, "checkpoint", fix)

    def clean_stale(self) -> None:
        """Remove temporary files of killed writers in every checkpoint folder."""
        if self.folder.is_dir():
            for sub in self.folder.iterdir():
                if self.PATTERN.match(sub.name) and sub.is_dir():
                    remove_stale_temps(sub)

    def clear(self) -> None:
        """Remove every checkpoint folder, finished or not: a writer killed mid-save leaves one without its state file."""
        if self.folder.is_dir():
            for sub in self.folder.iterdir():
                if self.PATTERN.match(sub.name) and sub.is_dir():
                    shutil.rmtree(sub, ignore_errors=True)
