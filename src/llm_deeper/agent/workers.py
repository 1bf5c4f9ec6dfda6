"""Tool calls in worker processes: a call that hangs is killed, not waited for.

A thread cannot be stopped: a tool stuck in C code (a huge power computed
while holding the GIL) keeps running, and a thread-based timeout fires only
when it finishes. A process can be killed at once, so each call runs in a
worker process:

- the workers are forked from this process, so they know every tool of the
  registry (closures included) and only the tool's name and arguments cross
  the pipe; a small pool stays warm, so a call pays no process start;
- a call that outlives its wall-clock budget gets its worker SIGKILLed (a
  fresh one replaces it); a worker also has a CPU-time limit per call and a
  memory limit (resource.setrlimit), so a runaway tool dies or gets a
  MemoryError instead of eating the machine;
- the worker turns the result into text and cuts it, so a huge result never
  crosses the pipe.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import weakref
from dataclasses import dataclass

from ..tools.calls import compact_json
from ..tools.registry import ToolError


@dataclass(frozen=True)
class WorkerLimits:
    """What one tool call may use."""

    cpu_s: int  # CPU seconds per call (RLIMIT_CPU soft limit, reset before each call)
    memory_mb: int  # memory a worker may add on top of what it inherited (RLIMIT_AS)
    max_output_chars: int  # longer results are cut in the worker


@dataclass(frozen=True)
class Outcome:
    """What a worker answered for one call."""

    kind: str  # ok | tool_error | crash | resource | timeout
    text: str  # the result text (cut), or the error message
    seconds: float  # time the call took


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [truncated {len(text) - limit} characters]"


def result_text(value) -> str:
    """A tool's return value as the text the model reads."""
    if isinstance(value, str):
        return value
    try:
        return compact_json(value)
    except (TypeError, ValueError):
        return str(value)


def _address_space_bytes() -> int:
    """This process's virtual size (VmSize), the base the memory limit is added to."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _set_memory_limit(memory_mb: int) -> None:
    import resource

    base = _address_space_bytes()
    if not base:  # no /proc (macOS): RLIMIT_AS is not enforced there anyway
        return
    limit = base + memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _set_cpu_limit(cpu_s: int) -> None:
    """Allow `cpu_s` more CPU seconds from now (the limit counts the worker's whole life)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    soft = math.ceil(spent) + cpu_s
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _serve(connection, registry, limits: WorkerLimits) -> None:
    """The worker's loop: (name, arguments) in, Outcome out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it kills us
    # The fork copied the parent's unflushed stdout/stderr buffers; flushing them at exit would print the
    # parent's lines twice, and a tool's own prints would mix into the parent's output: send both nowhere.
    sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")
    parent = os.getppid()
    _set_memory_limit(limits.memory_mb)
    while True:
        try:
            # Sibling workers forked later hold copies of our pipe, so a dead parent may not close it: look.
            if not connection.poll(2.0):
                if os.getppid() != parent:
                    return
                continue
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        name, arguments = request
        _set_cpu_limit(limits.cpu_s)
        start = time.perf_counter()
        try:
            kind, text = "ok", cut(result_text(registry.get(name)(**arguments)), limits.max_output_chars)
        except ToolError as exc:
            kind, text = "tool_error", str(exc)
        except MemoryError:
            kind, text = "resource", f"ran out of memory (limit {limits.memory_mb} MB)"
        except RecursionError:
            kind, text = "resource", "recursed too deeply"
        except Exception as exc:  # a bug in a tool must not stop the agent; the model sees what happened
            kind, text = "crash", f"{type(exc).__name__}: {exc}"
        try:
            connection.send(Outcome(kind, text, time.perf_counter() - start))
        except MemoryError:
            connection.send(Outcome("resource", f"ran out of memory (limit {limits.memory_mb} MB)", time.perf_counter() - start))


class Worker:
    """One forked worker process and its end of the pipe."""

    def __init__(self, registry, limits: WorkerLimits) -> None:
        context = multiprocessing.get_context("fork")  # fork: the child has the registry's tools, closures included
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, registry, limits), name="llm-deeper-tool", daemon=True)
        self.process.start()
        child.close()
        self.limits = limits

    def send(self, name: str, arguments: dict) -> None:
        self.connection.send((name, arguments))

    def receive(self, timeout_s: float) -> Outcome | None:
        """The answer, or None if none came within `timeout_s` (or the worker died)."""
        try:
            if not self.connection.poll(max(0.0, timeout_s)):
                return None
            return self.connection.recv()
        except (EOFError, OSError):
            return self._death()

    def _death(self) -> Outcome:
        self.process.join(1.0)
        code = self.process.exitcode
        if code == -signal.SIGXCPU:
            return Outcome("resource", f"used more than {self.limits.cpu_s} s of CPU time", 0.0)
        return Outcome("crash", f"the tool's worker process died (exit code {code})", 0.0)

    def kill(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(2.0)
        self.connection.close()

    def close(self) -> None:
        try:
            self.connection.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(0.5)
        if self.process.is_alive():
            self.kill()
        else:
            self.connection.close()


class WorkerPool:
    """A few warm workers for one registry; busy or killed ones are replaced on demand."""

    def __init__(self, registry, limits: WorkerLimits, size: int = 2) -> None:
        self.registry, self.limits, self.size = registry, limits, size
        self._idle: list[Worker] = []
        self._names: tuple[str, ...] = ()  # the tools the idle workers were forked with
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._idle)  # a dropped executor stops its workers


    def acquire(self) -> Worker:
        with self._lock:
            names = tuple(self.registry.names())
            if names != self._names:  # tools were added or removed since the fork: old workers do not know them
                self._close_idle()
                self._names = names
            if self._idle:
                return self._idle.pop()
        return Worker(self.registry, self.limits)

    def release(self, worker: Worker) -> None:
        with self._lock:
            if len(self._idle) < self.size and worker.process.is_alive():
                self._idle.append(worker)
                return
        worker.close()

    def fill(self) -> None:
        """Start workers until `size` are warm (after a kill, so the next call pays no start)."""
        with self._lock:
            self._idle[:] = [w for w in self._idle if w.process.is_alive()]
            while len(self._idle) < self.size:
                self._idle.append(Worker(self.registry, self.limits))
            self._names = tuple(self.registry.names())

    def close(self) -> None:
        with self._lock:
            self._close_idle()

    def _close_idle(self) -> None:
        _close_all(self._idle)


def _close_all(workers: list[Worker]) -> None:
    for worker in workers:
        worker.close()
    workers.clear()
