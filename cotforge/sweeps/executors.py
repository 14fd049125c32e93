"""Where a round of cells runs: one after another in this process (Serial), up to N at once on this machine, each in
a process of its own pinned to a GPU or to a share of the cores (LocalPool), or as Ray tasks on a cluster
(RayCluster). An executor knows nothing of what a cell does: it runs picklable tasks (cells.CellJob), each of which
writes its own files, and hands back what each returned or why it failed. A failed task never stops the others."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cotforge.sweeps.settings import SweepError

Log = Callable[[str], None]
Started = Callable[[int, str], None]  # a task's index, and where it runs ("" in this process)
Finished = Callable[[int, Any], None]  # a task's index, and its result or CellFailure
RAY_INSTALL = "pip install 'cotforge[sweep-ray]'"
POLL_S = 0.2  # how often a LocalPool looks for a finished process: cells take seconds to hours


class Task(Protocol):
    """What an executor runs: named, picklable (it may travel to another process or machine), called with a log."""

    @property
    def name(self) -> str: ...

    def __call__(self, log: Log) -> Any: ...


@dataclass(frozen=True)
class CellFailure:
    """A cell that ended without a result: its name, the reason, and whether its input was refused (a student, data
    or setting to fix) rather than the run crashing."""

    name: str
    reason: str
    bad_input: bool

    @classmethod
    def of(cls, name: str, error: Exception) -> CellFailure:
        bad_input = isinstance(error, ValueError)  # what the CLI reports as bad input: SweepError, StudentError ...
        return cls(name, str(error) if bad_input else f"{type(error).__name__}: {error}", bad_input)


def outcome(task: Task, log: Log) -> Any:
    """The task's result, or its CellFailure; a crash's traceback goes to the log, where the cause can be read."""
    try:
        return task(log)
    except Exception as error:
        failure = CellFailure.of(task.name, error)
        if not failure.bad_input:
            log(traceback.format_exc().rstrip())
        return failure


class Executor(Protocol):
    def run(self, tasks: Sequence[Task], started: Started, finished: Finished, log: Log) -> None:
        """Run every task, calling `started` as each begins and `finished` as each ends; return once all have
        ended."""


@dataclass(frozen=True)
class Serial:
    """One task after another in this process, logging to `log` (the default)."""

    def run(self, tasks: Sequence[Task], started: Started, finished: Finished, log: Log) -> None:
        for index, task in enumerate(tasks):
            started(index, "")
            finished(index, outcome(task, log))


@dataclass(frozen=True)
class Slot:
    """Where one of a LocalPool's processes runs: a GPU (as CUDA_VISIBLE_DEVICES names it) or none, and its torch
    threads."""

    gpu: str | None
    threads: int

    def describe(self) -> str:
        return ("" if self.gpu is None else f"GPU {self.gpu}, ") + f"torch threads {self.threads}"

    def environment(self) -> dict[str, str]:
        """Set before the process starts: CUDA reads its devices once, when it first starts."""
        return {"OMP_NUM_THREADS": str(self.threads)} | ({} if self.gpu is None else {"CUDA_VISIBLE_DEVICES": self.gpu})


def visible_gpus() -> list[str]:
    """This machine's GPUs, as CUDA_VISIBLE_DEVICES names them (honouring one already set)."""
    import torch

    count = torch.cuda.device_count()
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [name.strip() for name in named.split(",")] if named else [str(i) for i in range(count)]
    return names[:count]


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_slots(jobs: int) -> list[Slot]:
    """`jobs` slots: one GPU each where there are GPUs, and the cores split between them."""
    if jobs < 1:
        raise SweepError(f"--jobs {jobs}: give 1 or more cells at once")
    gpus = visible_gpus()
    if gpus and jobs > len(gpus):
        raise SweepError(f"--jobs {jobs}: this machine has {len(gpus)} GPUs and a cell gets one of its own")
    threads = max(1, available_cores() // jobs)
    return [Slot(gpus[i] if gpus else None, threads) for i in range(jobs)]


@dataclass(frozen=True)
class LocalPool:
    """Up to len(slots) tasks at once, each in a fresh Python process (its memory, threads and CUDA state are its
    own) pinned to a free slot. A process that dies (killed, out of memory) fails its task alone; when the pool
    itself is stopped (Ctrl-C, SIGTERM, or killed: Linux ends the children with it) its running tasks are ended."""

    slots: tuple[Slot, ...]

    @classmethod
    def of(cls, jobs: int) -> LocalPool:
        return cls(tuple(local_slots(jobs)))

    def run(self, tasks: Sequence[Task], started: Started, finished: Finished, log: Log) -> None:
        waiting = deque(enumerate(tasks))
        free = list(self.slots)
        running: dict[int, tuple[subprocess.Popen[bytes], Slot, Path]] = {}  # task index -> process, slot, result
        with tempfile.TemporaryDirectory(prefix="cotforge-cells-") as scratch:
            try:
                while waiting or running:
                    while waiting and free:
                        index, task = waiting.popleft()
                        slot = free.pop(0)
                        process, result = _start(task, slot, Path(scratch) / str(index))
                        running[index] = (process, slot, result)
                        started(index, f"process {process.pid}, {slot.describe()}")
                    ended = [index for index, (process, _, _) in running.items() if process.poll() is not None]
                    for index in ended:
                        process, slot, result = running.pop(index)
                        free.append(slot)
                        finished(index, _result(tasks[index], process, result))
                    if not ended:
                        time.sleep(POLL_S)
            finally:
                for process, _, _ in running.values():
                    process.terminate()
                    process.wait()


def _start(task: Task, slot: Slot, folder: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A child running `task` in `slot`: the task pickled to a file it reads, its outcome to a file it writes."""
    folder.mkdir()
    task_file, result = folder / "task.pickle", folder / "outcome.pickle"
    task_file.write_bytes(pickle.dumps((task, slot)))
    # The child imports what this process imports, from the same places (a script's own sys.path included).
    command = [sys.executable, "-c", CHILD, json.dumps(sys.path), str(task_file), str(result)]
    return subprocess.Popen(command, env=os.environ | slot.environment()), result


def _result(task: Task, process: subprocess.Popen[bytes], result: Path) -> Any:
    if result.exists():
        return pickle.loads(result.read_bytes())
    return CellFailure(
        task.name,
        f"its process ended (exit code {process.returncode}: killed, or out of memory?) before it finished",
        False,
    )


CHILD = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from cotforge.sweeps.executors import run_child; "
    "run_child(*sys.argv[2:])"
)


def run_child(task_file: str, result_file: str) -> None:
    """A LocalPool child: its slot's threads (its GPU was set in its environment), the task, its outcome written
    (renamed into place, so a half-written one is never read)."""
    if sys.platform.startswith("linux"):  # ended with the sweep, even a killed one: no orphan writing its cell
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    task, slot = pickle.loads(Path(task_file).read_bytes())
    import torch

    torch.set_num_threads(slot.threads)
    log = _prefixed(task.name)
    log(f"process {os.getpid()}: torch threads {torch.get_num_threads()}, GPU {slot.gpu or 'none'}")
    try:
        result = outcome(task, log)
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the terminal: the sweep says it was interrupted
        sys.exit(130)
    partial = Path(result_file + ".part")
    partial.write_bytes(pickle.dumps(result))
    partial.replace(result_file)


def _prefixed(name: str) -> Log:
    """A worker's log: its own stderr (the terminal, or Ray's log of the worker), each line with the cell's name."""

    def log(line: str) -> None:
        print(f"{name}: {line}", file=sys.stderr, flush=True)

    return log


@dataclass(frozen=True)
class RayCluster:
    """Each task a Ray task with its share of the cluster, in a worker process of its own: one GPU where the
    cluster has GPUs, else `cpus` CPUs (its torch threads); Ray schedules them. Tasks read and write the sweep folder
    themselves, at the path the driver gave: on a cluster of several machines it must be on a filesystem they all
    share, mounted at the same path, and cotforge installed on every node."""

    address: str = "local"  # local: start Ray here (or use the Ray this process joined); auto; host:port; ray://...
    cpus: int = 1

    def __post_init__(self) -> None:
        if importlib.util.find_spec("ray") is None:
            raise SweepError(f"--ray needs Ray, which is not installed: {RAY_INSTALL}")
        if self.cpus < 1:
            raise SweepError(f"--ray-cpus {self.cpus}: give 1 or more")

    def run(self, tasks: Sequence[Task], started: Started, finished: Finished, log: Log) -> None:
        import ray

        if not ray.is_initialized():
            local = self.address == "local"
            try:
                ray.init(**({"include_dashboard": False} if local else {"address": self.address}))
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise SweepError(f"--ray {self.address}: no Ray cluster could be joined ({error})") from None
        gpus = ray.cluster_resources().get("GPU", 0)
        share: dict[str, int] = {"num_gpus": 1} if gpus else {"num_cpus": self.cpus}
        remote = ray.remote(max_calls=1, **share)(_run_ray_task)  # max_calls=1: a fresh worker process per task
        place = f"Ray task, {'GPUs 1' if gpus else f'CPUs {self.cpus}'}"
        pending: dict[Any, int] = {}
        try:
            for index, task in enumerate(tasks):
                pending[remote.remote(task, None if gpus else self.cpus, os.getcwd())] = index
                started(index, place)
            while pending:
                [ready], _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(ready)
                try:
                    result = ray.get(ready)
                except ray.exceptions.RayError as error:  # its worker or node died: the task's own errors come back
                    result = CellFailure(tasks[index].name, f"its Ray task failed: {error}", False)
                finished(index, result)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def _run_ray_task(task: Task, threads: int | None, cwd: str) -> Any:
    """A Ray worker: in the driver's folder (relative paths mean what they meant there), with its CPU share as torch
    threads where it has no GPU."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return outcome(task, _prefixed(task.name))


def executor_for(jobs: int = 1, ray: str | None = None, ray_cpus: int = 1) -> Executor:
    """The executor that --jobs and --ray ask for: Serial for one job, a LocalPool for more, a RayCluster for --ray."""
    if ray is not None:
        if jobs != 1:
            raise SweepError("give --jobs or --ray, not both: on Ray the cluster decides how many cells run at once")
        return RayCluster(ray, ray_cpus)
    return Serial() if jobs == 1 else LocalPool.of(jobs)
