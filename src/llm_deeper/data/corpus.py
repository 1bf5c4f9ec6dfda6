"""Text corpora for TinyGPT: built from what is on the machine, or any text file.

The default corpus is the docstrings of the Python standard library, read
with `ast` from the installed source (nothing is imported or executed, nothing
is downloaded). Files are visited in sorted order, so the corpus is the same
on every machine with the same Python version (~1.6 MB for 3.11). It is built
once (~5 s) and cached under the artifact folder.

Documents are joined with the end-of-text token, so a model learns where a
docstring stops and sampling can stop there too.
"""

from __future__ import annotations

import ast
import hashlib
import sys
import sysconfig
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

EOS = "<|endoftext|>"  # document separator; a special token in both TinyGPT tokenizers
# Stdlib folders that are tests, tools or vendored code rather than documentation.
SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "__pycache__", "turtledemo", "ensurepip"}
MIN_DOC_CHARS = 40  # shorter docstrings ("Return x.") add little but separators
VAL_EVERY = 10  # every 10th document (or the last 10% of a plain file) is validation


@dataclass
class Corpus:
    """A named text split into train and validation parts."""

    name: str  # "stdlib-docstrings" or the file name
    train: str  # text the model trains on
    val: str  # held-out text for the validation loss
    documents: int  # documents (docstrings) in total; 1 for a plain file

    @property
    def chars(self) -> int:
        return len(self.train) + len(self.val)


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_docstrings() -> list[str]:
    """Every module, class and function docstring of the stdlib, in a fixed order."""
    root = stdlib_root()
    files = sorted(p for p in root.rglob("*.py") if not set(p.relative_to(root).parts[:-1]) & SKIP_DIRS)
    docs: list[str] = []
    seen: set[str] = set()
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes in old files warn at parse time
                tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= MIN_DOC_CHARS and EOS not in doc and doc not in seen:
                    seen.add(doc)
                    docs.append(doc)
    return docs


def cached_stdlib_docstrings() -> list[str]:
    """`stdlib_docstrings()`, cached per Python version under the artifact folder."""
    from ..paths import artifact_dir

    version = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    path = artifact_dir("corpora") / f"stdlib-docstrings-py{version}.txt"
    if path.is_file():
        return path.read_text(encoding="utf-8").split(EOS)
    docs = stdlib_docstrings()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(EOS.join(docs), encoding="utf-8")
    tmp.replace(path)  # atomic: a half-written cache is never read
    return docs


def default_corpus(max_chars: int | None = None) -> Corpus:
    """Stdlib docstrings; every `VAL_EVERY`-th document is validation. `max_chars` keeps a prefix."""
    docs = cached_stdlib_docstrings()
    if max_chars is not None:
        kept, total = [], 0
        for doc in docs:
            if total >= max_chars:
                break
            kept.append(doc)
            total += len(doc)
        docs = kept
    train = [d for i, d in enumerate(docs) if i % VAL_EVERY != VAL_EVERY - 1]
    val = [d for i, d in enumerate(docs) if i % VAL_EVERY == VAL_EVERY - 1]
    return Corpus("stdlib-docstrings", EOS.join(train) + EOS, EOS.join(val) + EOS, len(docs))


def file_corpus(path: str | Path, val_fraction: float = 0.1) -> Corpus:
    """Any UTF-8 text file: the first 90% trains, the last 10% validates (nanoGPT's split)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"no such text file: {path} (pass --text with a UTF-8 text file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it first, e.g. with iconv") from exc
    if len(text) < 100:
        raise UserError(f"{path} holds only {len(text)} characters: TinyGPT needs at least a few hundred to train on")
    cut = int(len(text) * (1 - val_fraction))
    return Corpus(path.name, text[:cut], text[cut:], 1)


def load_corpus(text_file: str | Path | None = None, max_chars: int | None = None) -> Corpus:
    """The file when given, else the default stdlib corpus."""
    return file_corpus(text_file) if text_file else default_corpus(max_chars)


def fingerprint(text: str) -> str:
    """Short hash of a text, to check a checkpoint is resumed on the same data."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
