"""One task runner for a sweep's stages: this process, local worker processes (one per GPU if asked) or Dask.

Tasks are picklable ``fn(arg)`` calls. :meth:`TaskRunner.results` yields ``(key, result, error)`` as tasks
finish, and tasks may be submitted while iterating -- a sweep submits a pruning point's simulations as soon
as the point is done, so both stages share the workers.

* ``workers=1``, no client: in this process, in submission order.
* ``workers=N``: a local pool of N spawned processes that die with this one. A worker that dies (killed,
  out of memory) breaks the pool: it is restarted and the tasks it lost run again, one at a time until
  the culprit is known; a task whose worker dies ``max_attempts`` times while it runs alone fails with
  :class:`WorkerDiedError`, the others go on.
* ``gpus=[0, 1, ...]``: one local worker per GPU, each seeing only its own (``CUDA_VISIBLE_DEVICES``).
* ``client=`` a ``dask.distributed.Client``: tasks go to the cluster; tasks submitted with ``gpu=True``
  ask for the worker resource ``GPU: 1`` when ``gpus`` is set (start workers with ``--resources GPU=1``).
  Dask retries a task whose worker died (its ``allowed-failures`` setting).

>>> runner = TaskRunner()
>>> runner.submit(abs, -3, key="a")
>>> [(key, result) for key, result, error in runner.results()]
[('a', 3)]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context

__all__ = ["TaskRunner", "WorkerDiedError", "add_runner_arguments", "check_workers", "dask_client", "gpu_list",
           "resolve_gpus", "runner_from_args", "visible_gpus"]

MAX_ATTEMPTS = 3


class WorkerDiedError(RuntimeError):
    """A task's worker process died every time the task ran."""


def visible_gpus() -> list[int]:
    """The CUDA devices this process may use (``CUDA_VISIBLE_DEVICES`` order), ``[]`` without CUDA."""
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def dask_client(client=None, dask_scheduler: str | None = None):
    """``client``, or a client of the scheduler at ``dask_scheduler`` (an unreachable one: a clear error at once),
    or ``None`` for local execution."""
    if client is not None or dask_scheduler is None:
        return client
    from dask.distributed import Client

    _check_dask_handshake(dask_scheduler)
    try:
        return Client(dask_scheduler, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise ValueError(f"--dask-scheduler: no Dask scheduler answered at {dask_scheduler!r} ({err})") from None
    except (ValueError, TypeError) as err:  # distributed's address parser: "missing port number in address ..."
        raise ValueError(f"--dask-scheduler: {dask_scheduler!r} is not a scheduler address ({err}); give one like "
                         "tcp://host:8786") from None  # fmt: skip


HANDSHAKE_TIMEOUT_S = 5.0  # a Dask scheduler sends its handshake as soon as a connection is accepted
MAX_HANDSHAKE_BYTES = 1 << 20  # a handshake message is a few hundred bytes


def _check_dask_handshake(address: str, timeout_s: float | None = None) -> None:
    """Connect to a ``tcp://`` scheduler address and read the first frame header the scheduler sends on accept
    (8 bytes, little-endian size); refuse, in bounded time, an address where nothing Dask-like answers (an HTTP
    server waits for a request; a banner reads as an absurd size). Other protocols are left to distributed."""
    timeout_s = HANDSHAKE_TIMEOUT_S if timeout_s is None else timeout_s
    text = str(address)
    if "://" in text and not text.startswith("tcp://"):
        return
    host, _, port = text.removeprefix("tcp://").rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        return  # distributed's own parser names the malformed address
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            header = b""
            while len(header) < 8:
                chunk = connection.recv(8 - len(header))
                if not chunk:
                    break
                header += chunk
    except TimeoutError:
        header = b""
    except OSError as err:
        raise ValueError(f"--dask-scheduler: no Dask scheduler answered at {address!r} ({err})") from None
    size = struct.unpack("<Q", header)[0] if len(header) == 8 else 0
    if not 0 < size <= MAX_HANDSHAKE_BYTES:
        raise ValueError(f"--dask-scheduler: something answers at {address!r} but not a Dask scheduler (no Dask "
                         f"handshake within {timeout_s:g} s); check the address and port")  # fmt: skip


def check_runner(workers, gpus, distributed: bool) -> list[int] | None:
    """Check where tasks are to run, before any work; returns the GPU ids (see :func:`resolve_gpus`).

    ``distributed``: a Dask cluster runs them, so ``workers`` must stay 1 and GPU ids name the workers' devices
    (not checked here); locally, every id must be a device this process sees and ``workers``, if given, must
    match the one worker per GPU."""
    check_workers(workers)
    if distributed and workers > 1:
        raise ValueError(f"--workers {workers}: with a Dask scheduler its workers run the tasks; leave --workers out")
    gpus = resolve_gpus(gpus)
    if gpus is not None and not distributed:
        visible = visible_gpus()
        unseen = [g for g in gpus if g not in visible]
        if unseen:
            seen = ", ".join(map(str, visible)) or "none: torch.cuda.is_available() is False"
            raise ValueError(f"--gpus: device {unseen[0]} is not visible to this process (visible: {seen})")
        if workers not in (1, len(gpus)):
            raise ValueError(f"--workers {workers} with --gpus {','.join(map(str, gpus))}: one worker runs per GPU; "
                             "leave --workers out")  # fmt: skip
    return gpus


def resolve_gpus(gpus) -> list[int] | None:
    """``None``, ``"auto"`` (every visible CUDA device; refused if there is none) or a list of device ids."""
    if gpus is None:
        return None
    if gpus == "auto":
        found = visible_gpus()
        if not found:
            raise ValueError("--gpus: 'auto' found no CUDA device (torch.cuda.is_available() is False); "
                             "leave --gpus out to run on CPU workers")  # fmt: skip
        return found
    if (not isinstance(gpus, list | tuple) or not gpus
            or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus)):  # fmt: skip
        raise ValueError(f"--gpus: expected 'auto' or a list of CUDA device ids like [0, 1], got {gpus!r}")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus: device ids repeat in {list(gpus)}; give each GPU once")
    return list(gpus)


def check_workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: must be a positive integer, got {workers!r}")
    return workers


def gpu_list(text: str):
    """argparse type of ``--gpus``: ``auto`` or comma-separated CUDA device ids."""
    if text == "auto":
        return text
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        ids = []
    if not ids or any(i < 0 for i in ids):
        raise argparse.ArgumentTypeError(f"expected 'auto' or device ids like 0,1, got {text!r}")
    return ids


def add_runner_arguments(parser: argparse.ArgumentParser, what: str = "pruning runs") -> None:
    """``--workers``, ``--gpus`` and ``--dask-scheduler``: where a command runs its ``what``."""
    parser.add_argument("--workers", type=int, default=1, help=f"local worker processes for the {what} "
                        "(default 1: this process)")
    parser.add_argument("--gpus", type=gpu_list, help=f"'auto' or device ids like 0,1: the {what} run one per GPU, "
                        "each worker seeing only its own")
    parser.add_argument("--dask-scheduler", help=f"address of a Dask scheduler (e.g. tcp://host:8786) whose workers "
                        f"run the {what}; they must see the output directory")


def runner_from_args(args) -> TaskRunner:
    """The :class:`TaskRunner` that :func:`add_runner_arguments`' options ask for (checked before any work)."""
    gpus = check_runner(args.workers, args.gpus, distributed=args.dask_scheduler is not None)
    return TaskRunner(args.workers, dask_client(None, args.dask_scheduler), gpus)


def _init_worker(parent_pid: int, gpu_queue, threads: int | None = None) -> None:
    """Pool-worker initializer: die with the parent (Linux), take one GPU from ``gpu_queue`` if any, and use
    ``threads`` CPU threads for torch/BLAS (workers share the cores; a user's own OMP_NUM_THREADS wins)."""
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read by torch when it is first imported
            os.environ[variable] = str(threads)
        torch = sys.modules.get("torch")
        if torch is not None:  # imported already, with the parent's main module (spawn re-imports it first)
            torch.set_num_threads(threads)  # idle OpenMP threads spin: more threads than cores slow every worker
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux: workers end when they next find the pool gone
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


@dataclass
class _Task:
    key: object
    fn: Callable
    arg: object
    gpu: bool
    attempts: int = 0


class TaskRunner:
    """Run tasks here, on local worker processes or on a Dask cluster; see the module docstring."""

    def __init__(self, workers: int = 1, client=None, gpus: list[int] | None = None,
                 max_attempts: int = MAX_ATTEMPTS) -> None:  # fmt: skip
        if gpus is not None and client is None:
            workers = len(gpus)
        self.workers, self.client, self.gpus, self.max_attempts = workers, client, gpus, max_attempts
        self._pending: deque[_Task] = deque()  # submitted, not yet handed to an executor
        self._running: dict = {}  # future -> task
        self._pool: ProcessPoolExecutor | None = None

    @property
    def parallel(self) -> bool:
        return self.client is not None or self.workers > 1

    @property
    def slots(self) -> int:
        """Tasks that can execute at once: local workers, or the Dask cluster's worker threads now."""
        return sum(self.client.nthreads().values()) if self.client is not None else self.workers

    @property
    def running(self) -> int:
        """Tasks executing now, at most: handed to workers, not finished, no more than there are slots."""
        return min(len(self._running), self.slots)

    def submit(self, fn: Callable, arg, *, key, gpu: bool = False) -> None:
        """Queue ``fn(arg)``; its result comes out of :meth:`results` under ``key``."""
        self._pending.append(_Task(key, fn, arg, gpu))

    def results(self) -> Iterator[tuple[object, object, BaseException | None]]:
        """``(key, result, None)`` or ``(key, None, error)`` for every task, as they finish."""
        try:
            if self.client is not None:
                yield from self._dask_results()
            elif self.workers > 1:
                yield from self._pool_results()
            else:
                while self._pending:
                    task = self._pending.popleft()
                    try:
                        result = task.fn(task.arg)
                    except Exception as err:
                        yield task.key, None, err
                    else:
                        yield task.key, result, None
        finally:
            self.close()

    def close(self) -> None:
        """Cancel what has not run and stop local workers."""
        for future in self._running:
            future.cancel()
        self._running.clear()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- local processes ---------------------------------------------------------------------------
    def _new_pool(self) -> ProcessPoolExecutor:
        context = get_context("spawn")
        gpu_queue = None
        if self.gpus is not None:
            gpu_queue = context.Queue()
            for gpu in self.gpus:
                gpu_queue.put(gpu)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                   initargs=(os.getpid(), gpu_queue, threads))  # fmt: skip

    def _pool_results(self):
        suspects: deque[_Task] = deque()  # lost when a worker died beside other tasks: rerun one at a time
        isolated = None  # the suspect running alone
        while self._pending or self._running or suspects:
            if self._pool is None:
                self._pool = self._new_pool()
            if suspects or isolated:  # alone on the pool, a task that kills its worker is found and charged
                if not self._running:
                    isolated = suspects.popleft()
                    self._running[self._pool.submit(isolated.fn, isolated.arg)] = isolated
            else:
                while self._pending:
                    task = self._pending.popleft()
                    self._running[self._pool.submit(task.fn, task.arg)] = task
            finished, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                task = self._running.pop(future)
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    self._running[future] = task
                    broken = True
                elif error is not None:
                    yield task.key, None, error
                else:
                    yield task.key, future.result(), None
                if task is isolated:
                    isolated = None
            if not broken:
                continue
            # a worker died: every task still on the pool is lost with it; start a new pool
            lost = list(self._running.values())
            self._running.clear()
            isolated = None
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            if len(lost) > 1:
                suspects.extend(lost)
                continue
            (task,) = lost
            task.attempts += 1
            if task.attempts >= self.max_attempts:
                died = f"the worker running this task died {task.attempts} times (killed or out of memory)"
                yield task.key, None, WorkerDiedError(died)
            else:
                suspects.append(task)

    # -- Dask ----------------------------------------------------------------------------------------
    def _dask_results(self):
        from dask.distributed import as_completed

        completed = as_completed()
        while True:
            while self._pending:
                task = self._pending.popleft()
                resources = {"GPU": 1} if task.gpu and self.gpus is not None else None
                future = self.client.submit(task.fn, task.arg, pure=False, resources=resources)
                self._running[future] = task
                completed.add(future)
            if not self._running:
                return
            future = next(completed)
            task = self._running.pop(future)
            try:
                result = future.result()
            except Exception as err:
                yield task.key, None, err
            else:
                yield task.key, result, None
