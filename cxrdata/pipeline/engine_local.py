"""The local engine: tasks run in a process pool (or inline with one worker).

Each worker builds its stage chain once (``setup()`` per worker, never per record) and reports
per-stage progress through a queue. Tasks finish in any order; results do not depend on it.

Workers never outlive the build: they ignore Ctrl-C (the main process decides, see
:mod:`~cxrdata.pipeline.interrupts`), they are killed
when the main process stops for any reason (an interrupt, SIGTERM, an error in another task), and on
Linux the kernel kills them if the main process itself is killed (``PR_SET_PDEATHSIG``), so no
orphan keeps writing into OUT while a rerun starts.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.io.layout import OutputLayout
from cxrdata.pipeline import interrupts
from cxrdata.pipeline.partition import Task
from cxrdata.pipeline.plan import ConfigPlan
from cxrdata.pipeline.stats import TaskStats
from cxrdata.pipeline.task_runner import TaskContext, run_task

Progress = Callable[[str, int], None]

_worker_ctx: TaskContext | None = None
_worker_queue: Any = None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    if os.getppid() == 1:  # the parent died before the request was made
        os._exit(1)


def _init_worker(plan: ConfigPlan, layout: OutputLayout, config_hash: str, progress_queue: Any) -> None:
    global _worker_ctx, _worker_queue
    _die_with_parent()
    interrupts.worker_signals()
    import cv2  # only a worker decodes: the driver never imports OpenCV

    cv2.setNumThreads(1)  # one process per core: OpenCV's own threads would only contend
    _worker_ctx = TaskContext.create(plan, layout, config_hash)
    _worker_queue = progress_queue


def _run_in_worker(task: Task) -> TaskStats:
    assert _worker_ctx is not None, "worker not initialised"
    return run_task(_worker_ctx, task, lambda stage, n: _worker_queue.put((stage, n)))


def run_local(plan: ConfigPlan, layout: OutputLayout, config_hash: str, tasks: list[Task],
              workers: int, progress: Progress) -> Iterator[TaskStats]:
    """Run ``tasks`` and yield each one's stats as it completes."""
    if not tasks:
        return
    if workers <= 1 or len(tasks) == 1:
        ctx = TaskContext.create(plan, layout, config_hash)
        for task in tasks:
            yield run_task(ctx, task, progress)
        return
    spawn = mp.get_context("spawn")  # fork is unsafe beside polars/arrow thread pools
    progress_queue = spawn.Queue()
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=spawn,
        initializer=_init_worker, initargs=(plan, layout, config_hash, progress_queue),
    )
    finished = False
    try:
        with interrupts.spawning():  # submit() spawns the workers
            pending: set[Future[TaskStats]] = {pool.submit(_run_in_worker, task) for task in tasks}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_queue, progress)
            for future in done:
                try:
                    yield future.result()
                except BrokenProcessPool:
                    raise CxrdataError("a worker process died (killed, or out of memory); finished tasks are kept: "
                                       "rerun the same command to resume") from None
        _drain(progress_queue, progress)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop(pool)
        progress_queue.close()
        progress_queue.join_thread()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers now (an interrupt or an error): their unfinished tasks have no marker."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public handles before Python 3.14
    manager = getattr(pool, "_executor_manager_thread", None)  # (shutdown drops both)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=5)
    if manager is not None:
        _forget_at_exit(manager)


def _forget_at_exit(manager: threading.Thread) -> None:
    """Wait for a killed pool's manager thread, then take it out of the exit hook of ``concurrent.futures``.

    That hook writes to every pool's wake-up pipe when the interpreter exits; after a stop signal
    interrupted the main thread inside the pool's bookkeeping, the pipe could be half-closed and the write
    printed a traceback after "stopped" (seen under load with SIGTERM). The pool is torn down by then."""
    from concurrent.futures import process as futures_process

    manager.join(timeout=5)
    getattr(futures_process, "_threads_wakeups", {}).pop(manager, None)


def _drain(progress_queue: Any, progress: Progress) -> None:
    while True:
        try:
            stage, n = progress_queue.get_nowait()
        except queue.Empty:
            return
        progress(stage, n)
