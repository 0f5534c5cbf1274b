"""Run per-report tasks in isolated local processes, or on a Dask cluster.

Every stage that works report by report (extract, segment, embed, classify) hands
its tasks to :func:`run_tasks`, which yields one :class:`Outcome` per task, in
completion order. A task that fails becomes an :class:`InputError` naming its file;
the rest of the corpus goes on.

**Local processes: one process per task, at most ``workers`` at a time.** Why not
``concurrent.futures.ProcessPoolExecutor``: it cannot stop one task that runs past
its time limit (a running future cannot be cancelled), and one worker killed by the
kernel or a crash in C code breaks the whole pool (``BrokenProcessPool``), failing
every queued task with it; recovering means rebuilding the pool and guessing which
task was guilty. A process per task (what ``pebble`` does, without the dependency)
makes the guilty task obvious: the process that died or ran over is the task's, it
is killed alone and the task is recorded. Each process is forked from a small
``forkserver`` that has already imported the stage's modules, so starting one costs
a few milliseconds against the hundreds a PDF takes, and forking never copies the
threads of ONNX Runtime or PyTorch that the calling process may hold. In the
process the memory limit is ``RLIMIT_AS`` (address space), so a PDF that inflates
a huge stream hits ``MemoryError`` inside its own process, not the machine's OOM
killer.

**Dask.** With a scheduler address (``engine.scheduler`` or ``--scheduler``) the
same tasks are sent to an existing ``distributed`` cluster. There the cluster's
workers own the processes: the memory limit is the worker's (``dask worker
--memory-limit``; a worker killed for it has its task retried by Dask and then
reported as failed), and a task running past the time limit is reported as failed
and cancelled, though the worker thread finishes it in the background.

Messages that libraries log or warn while a task runs (pdfminer's "Could not get
FontBBox", for instance) are captured with the task and logged by the caller with
the file they belong to, instead of being printed bare from a worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing.connection import Connection, wait
from typing import Any

from pipeline.core.errors import InputError
from pipeline.core.log import get_logger

DEFAULTS: dict[str, Any] = {
    # Address of an existing Dask scheduler (tcp://HOST:8786); '' = local processes.
    "scheduler": "",
}

log = get_logger(__name__)
# Modules the forkserver imports once, so that each task's process starts warm; a stage
# adds its own (:func:`preload`) before its first task.
_PRELOAD: list[str] = []


def cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow;
    ``os.cpu_count`` counts the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def preload(*modules: str) -> None:
    """Have the forkserver import ``modules`` when it starts (no effect once started:
    ``inspections run`` names every stage's modules before its first stage)."""
    for name in modules:
        if name not in _PRELOAD:
            _PRELOAD.append(name)


@dataclass(frozen=True)
class Limits:
    """How many tasks run at once and what each may use (0: no limit / one per core).

    ``section`` names the params section the limits come from, so that a message
    tells the user which setting to change.
    """

    workers: int = 0
    timeout_s: float = 0.0
    max_memory_mb: int = 0
    section: str = "extract"

    def worker_count(self, tasks: int) -> int:
        wanted = self.workers if self.workers > 0 else cores()
        return max(1, min(wanted, tasks))

    def timeout_reason(self) -> str:
        return (f"stopped after the time limit of {self.timeout_s:g} s "
                f"({self.section}.timeout_s)")

    def memory_reason(self) -> str:
        return (f"needed more than the memory limit of {self.max_memory_mb} MB "
                f"({self.section}.max_memory_mb)")


@dataclass
class Outcome:
    """What one task gave: its value, or the error naming its file; and the messages
    libraries logged while it ran."""

    index: int
    label: str
    value: Any = None
    error: InputError | None = None
    notes: list[str] = field(default_factory=list)


class _Notes(logging.Handler):
    """Collects library log records (warnings and up) during one task."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}"[:300])


def guarded(fn: Callable[..., Any], args: tuple, label: str, limits: Limits) -> tuple:
    """Run ``fn(*args)``; return ``("ok", value, notes)`` or ``("error", reason, notes)``.

    The one place a task's exceptions become a one-line reason, whichever engine runs
    it. Messages of non-pipeline loggers and Python warnings are returned as notes.
    """
    notes = _Notes()
    root = logging.getLogger()
    saved = root.level
    root.addHandler(notes)
    root.setLevel(min(saved, logging.WARNING) if saved else logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = fn(*args)
                status: tuple = ("ok", value)
            except InputError as err:  # the file it names may be the task's source PDF
                status = ("error", err.reason if err.path in (None, label)
                          else {"path": err.path, "reason": err.reason})
            except MemoryError:
                status = ("error", limits.memory_reason() if limits.max_memory_mb
                          else "ran out of memory")
            except RecursionError:
                status = ("error", "structure too deeply nested (recursion limit)")
            except Exception as err:  # noqa: BLE001 - any failure is this file's failure
                text = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
                status = ("error", f"failed: {type(err).__name__}" + (f": {text}" if text else ""))
        lines = notes.lines + [f"{w.category.__name__}: {w.message}"[:300] for w in caught]
    finally:
        root.removeHandler(notes)
        root.setLevel(saved)
    return (*status, lines)


def _address_space() -> int:
    """Bytes of address space this process holds now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _child(conn: Connection, fn: Callable[..., Any], args: tuple, label: str,
           limits: Limits) -> None:
    """Body of a task's process: apply the memory limit, run the task, send the result.

    The limit is on the address space the task may *add* to what the process holds
    when it starts: the libraries loaded before the fork (numpy's thread buffers,
    spaCy) reserve a gigabyte of address space they never touch, which is not the
    PDF's doing.
    """
    if limits.max_memory_mb > 0:
        cap = _address_space() + limits.max_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    result = guarded(fn, args, label, limits)
    try:
        conn.send(result)
    except MemoryError:
        conn.send(("error", limits.memory_reason(), []))
    except Exception as err:  # noqa: BLE001 - a value that cannot be pickled back
        conn.send(("error", f"its result could not be returned ({type(err).__name__})", []))
    conn.close()


def _context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(_PRELOAD))
    return ctx


@contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start processes without re-running the calling script in each one.

    A forkserver child re-imports the ``__main__`` script (as ``__mp_main__``) so that
    functions defined there can be unpickled; a benchmark or notebook that imports
    the whole pipeline would then import it again for every PDF, which cost a
    second a task. Tasks here are module-level functions of the pipeline, never of
    ``__main__``, so the script is hidden while a process starts (its preparation
    data is taken in ``start()``) and put back at once.
    """
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if hasattr(main, k)}
    try:
        if "__file__" in saved:
            delattr(main, "__file__")
        if "__spec__" in saved:
            main.__spec__ = None
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


def _crash_reason(exitcode: int | None, limits: Limits) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if -exitcode == signal.SIGKILL and limits.max_memory_mb:
            return f"worker killed ({name}), likely over the memory limit"
        return f"worker crashed ({name})"
    return f"worker exited without a result (exit code {exitcode})"


def _run_local(fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple]],
               limits: Limits) -> Iterator[Outcome]:
    ctx = _context()
    queue = deque(enumerate(tasks))
    running: dict[Connection, tuple[int, str, Any, float]] = {}
    workers = limits.worker_count(len(tasks))
    try:
        while queue or running:
            while queue and len(running) < workers:
                index, (label, args) = queue.popleft()
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(writer, fn, args, label, limits),
                                   daemon=True)
                with _main_not_reimported():
                    proc.start()
                writer.close()
                deadline = time.monotonic() + limits.timeout_s if limits.timeout_s > 0 \
                    else float("inf")
                running[reader] = (index, label, proc, deadline)
            soonest = min(item[3] for item in running.values())
            wait_s = None if soonest == float("inf") else max(0.0, soonest - time.monotonic())
            for reader in wait(list(running), wait_s):
                index, label, proc, _ = running.pop(reader)
                try:
                    status, value, notes = reader.recv()
                except (EOFError, OSError):
                    proc.join()
                    status, value, notes = "error", _crash_reason(proc.exitcode, limits), []
                reader.close()
                proc.join()
                yield _outcome(index, label, status, value, notes)
            now = time.monotonic()
            for reader, (index, label, proc, deadline) in list(running.items()):
                if now >= deadline:
                    proc.kill()
                    proc.join()
                    reader.close()
                    del running[reader]
                    yield Outcome(index, label, error=InputError(label, limits.timeout_reason()))
    finally:
        for reader, (_, _, proc, _) in running.items():
            proc.kill()
            proc.join()
            reader.close()


def _outcome(index: int, label: str, status: str, value: Any, notes: list[str]) -> Outcome:
    if status == "ok":
        return Outcome(index, label, value=value, notes=notes)
    if isinstance(value, dict):
        return Outcome(index, label, error=InputError(value["path"], value["reason"]), notes=notes)
    return Outcome(index, label, error=InputError(label, value), notes=notes)


@lru_cache(maxsize=4)
def client(address: str) -> Any:
    """A Dask client connected to the scheduler at ``address`` (one per address)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency of the package
        raise InputError("engine.scheduler", 'Dask is not installed: pip install '
                                             '"dask[distributed]"') from None
    try:
        return Client(address, timeout=20)
    except (OSError, TimeoutError) as err:
        raise InputError(address, f"cannot reach the Dask scheduler ({err})") from None


def _run_dask(fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple]], limits: Limits,
              address: str) -> Iterator[Outcome]:
    from distributed import as_completed

    dask = client(address)
    futures = {dask.submit(guarded, fn, args, label, limits, pure=False,
                           key=f"{fn.__name__}-{index}-{time.monotonic_ns()}"): (index, label)
               for index, (label, args) in enumerate(tasks)}
    per_round = max(1, len(dask.scheduler_info().get("workers", {})) or 1)
    budget = None
    if limits.timeout_s > 0:
        budget = limits.timeout_s * (len(tasks) / per_round + 1)
    done: set[Any] = set()
    try:
        for future in as_completed(list(futures), timeout=budget):
            done.add(future)
            index, label = futures[future]
            try:
                status, value, notes = future.result()
            except Exception as err:  # noqa: BLE001 - a worker lost with the task
                status, value, notes = "error", f"Dask task failed ({type(err).__name__})", []
            yield _outcome(index, label, status, value, notes)
    except TimeoutError:
        for future, (index, label) in futures.items():
            if future not in done:
                future.cancel()
                yield Outcome(index, label, error=InputError(label, limits.timeout_reason()))


def _nothing() -> Iterator[Outcome]:
    yield from ()


def run_tasks(fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple]], limits: Limits,
              scheduler: str = "") -> Iterator[Outcome]:
    """Run ``fn(*args)`` for each ``(label, args)``; yield outcomes as tasks finish.

    ``fn`` must be a module-level function (it is pickled to the worker). ``label``
    names the task's file in errors. Local processes unless ``scheduler`` is a Dask
    scheduler's address.
    """
    if not tasks:
        return _nothing()
    if scheduler:
        return _run_dask(fn, tasks, limits, scheduler)
    return _run_local(fn, tasks, limits)


def log_notes(outcome: Outcome, logger: logging.Logger | None = None) -> None:
    """Log what a library said during a task, once per distinct message, with its file."""
    seen: dict[str, int] = {}
    for note in outcome.notes:
        seen[note] = seen.get(note, 0) + 1
    for note, count in seen.items():
        times = f" ({count} times)" if count > 1 else ""
        (logger or log).warning("%s: %s%s", outcome.label, note, times)
