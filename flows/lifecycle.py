"""A run's processes end with it, and Ctrl-C or SIGTERM stops it within seconds.

Without a configured Prefect API, a run starts a temporary Prefect server (a child process of
~200 MB); extraction starts worker processes; a Dask stage may start a local cluster. When
the run's process is killed (SIGKILL, the OOM killer), none of them would notice: they would
live on, re-parented to init. Two mechanisms end them:

* :func:`ending_with_this_process` starts a small watcher process. While the run lives, it
  notes the run's descendants every :data:`WATCH_INTERVAL_S`; when the run's end of a pipe
  closes without a goodbye (the run died), it stops every process it noted, and every
  process of the run's process group when the run led one, first with SIGTERM, then SIGKILL.
* Worker processes ask the kernel for a signal when their parent dies
  (:func:`die_with_parent`, Linux's ``PR_SET_PDEATHSIG``), in case the watcher itself is gone.

:func:`stopping_on_signals` turns SIGTERM into the same ``KeyboardInterrupt`` as Ctrl-C, so
the run records why it ended; a database statement in flight is interrupted at once, and a
process still alive :data:`STOP_DEADLINE_S` after the signal (a thread deep in a fit) exits
hard, leaving the warehouse as its last committed stage left it.

Linux only where it reads ``/proc`` or calls ``prctl``; elsewhere the watcher stops only the
process group, and workers rely on it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

#: How often the watcher notes the run's descendants.
WATCH_INTERVAL_S = 0.2
#: How long stopped processes get to exit on SIGTERM before SIGKILL.
TERM_GRACE_S = 3.0
#: A run still alive this long after Ctrl-C or SIGTERM exits hard.
STOP_DEADLINE_S = 8.0
_GOODBYE = b"x"
_PR_SET_PDEATHSIG = 1


def die_with_parent(signal_number: int = signal.SIGKILL) -> None:
    """Ask the kernel to send this process ``signal_number`` when its parent ends (Linux; a
    no-op elsewhere); exit at once if the parent has already gone."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0)
    if os.getppid() != parent or parent == 1:
        os._exit(1)


def process_table() -> tuple[dict[int, list[int]], dict[int, tuple[int, int]]]:
    """Children of every process, and each process's (start time, process group)."""
    children: dict[int, list[int]] = defaultdict(list)
    details: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        pid = int(entry)
        children[int(fields[1])].append(pid)
        details[pid] = (int(fields[19]), int(fields[2]))
    return children, details


def descendants(roots: list[int], children: dict[int, list[int]]) -> set[int]:
    """Every process below ``roots`` in ``children`` (from :func:`process_table`)."""
    found, stack = set(), list(roots)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _watch(run_pid: int, pipe_fd: int) -> None:
    """The watcher's loop (in its own process): see the module docstring."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    led_group = os.getpgid(run_pid) == run_pid
    on_proc = os.path.isdir("/proc")
    noted: dict[int, int] = {}  # pid -> start time (a reused pid has another)
    while True:
        readable, _, _ = select.select([pipe_fd], [], [], WATCH_INTERVAL_S)
        if readable:
            message = os.read(pipe_fd, 1)
            if message == _GOODBYE:
                return
            if not message:
                break
        if on_proc:
            children, details = process_table()
            noted |= {pid: details[pid][0] for pid in descendants([run_pid], children)
                      if pid in details and pid != os.getpid()}
    _stop(noted, group=run_pid if led_group else None, on_proc=on_proc)


def _stop(noted: dict[int, int], *, group: int | None, on_proc: bool) -> None:
    """SIGTERM, then SIGKILL after :data:`TERM_GRACE_S`, to the noted processes still
    running (and their descendants) and to the run's process group."""
    def targets() -> set[int]:
        if not on_proc:
            return set()
        children, details = process_table()
        alive = [pid for pid, started in noted.items() if details.get(pid, (None,))[0] == started]
        members = [pid for pid, (_, pgid) in details.items() if group is not None and pgid == group]
        return (set(alive) | set(members) | descendants(alive + members, children)) - {os.getpid()}

    for signal_number, wait_s in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 0.0)):
        for pid in targets():
            with contextlib.suppress(OSError):
                os.kill(pid, signal_number)
        if group is not None:
            with contextlib.suppress(OSError):
                os.killpg(group, signal_number)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and targets():
            time.sleep(0.1)


@contextlib.contextmanager
def ending_with_this_process() -> Iterator[None]:
    """While the block runs, a watcher stops every process this one starts if this one dies
    without leaving the block (killed); leaving it normally, or by an exception, lets the
    watcher go quietly."""
    read_fd, write_fd = os.pipe()
    watcher = subprocess.Popen(
        [sys.executable, "-c", f"from songmix.flows.lifecycle import _watch; _watch({os.getpid()}, {read_fd})"],
        pass_fds=(read_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    os.close(read_fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.write(write_fd, _GOODBYE)
        os.close(write_fd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            watcher.wait(timeout=5)


@contextlib.contextmanager
def stopping_on_signals(
    *, interrupt: Callable[[], None] | None = None, deadline_s: float = STOP_DEADLINE_S
) -> Iterator[None]:
    """While the block runs (in the main thread): SIGTERM raises ``KeyboardInterrupt`` like
    Ctrl-C; on either, ``interrupt`` (default :func:`interrupt_work`) is called at once from
    another thread, and the process exits hard ``deadline_s`` later if it is still running."""
    interrupt = interrupt_work if interrupt is None else interrupt
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous_fd = signal.set_wakeup_fd(wake_write)
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    stopped = threading.Event()

    def on_signal() -> None:
        while not stopped.is_set():
            readable, _, _ = select.select([wake_read], [], [], 0.5)
            if not readable:
                continue
            received = os.read(wake_read, 16)
            if set(received) & {signal.SIGINT, signal.SIGTERM}:
                interrupt()
                # A daemon: it must not keep a process that stopped in time alive.
                deadline = threading.Timer(deadline_s, _exit_hard, args=(128 + received[0],))
                deadline.daemon = True
                deadline.start()
                return

    listener = threading.Thread(target=on_signal, name="songmix-signals", daemon=True)
    listener.start()
    try:
        yield
    finally:
        stopped.set()
        signal.signal(signal.SIGTERM, previous_term)
        signal.set_wakeup_fd(previous_fd)
        listener.join()
        os.close(wake_read)
        os.close(wake_write)


def interrupt_work() -> None:
    """Cut what a stopping command waits on: the database statements in flight (DuckDB looks
    for Ctrl-C only between its tasks, which a long join makes arbitrarily far apart) and the
    network transfers. Only a module this process has loaded can have work in flight, and
    importing one here (Prefect comes with the network module) would delay the stop."""
    connection = sys.modules.get("songmix.warehouse.connection")
    if connection is not None:
        connection.interrupt_open_connections()
    http = sys.modules.get("songmix.sources.http")
    if http is not None:
        http.interrupt_network()


def _raise_interrupt(signal_number: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signal_number).name}")


def _exit_hard(status: int) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write("songmix: still running after the stop signal; exiting now\n")
        sys.stderr.flush()
    os._exit(status)
