"""The decoding process: a child Python process that runs a decode for its caller and is killed past a time limit.

A decoder stuck in native code never returns to Python, so Python's timers and signal handlers never run there;
only a process boundary bounds it. :func:`lit_videor2.data.decoding.decode_video` with ``time_limit`` runs its
decode through :func:`decoder_process` (one per process: each DataLoader worker has its own), which raises
:class:`VideoDecodeTimeout` and kills the child (SIGKILL, which no signal mask blocks) when the decode is not done in
time. A result with a numpy ``frames`` array (a ``DecodedVideo``) comes back with its frames as raw bytes, read
straight into their array.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any

import numpy as np

from lit_videor2.data.probe import VideoDecodeError


class VideoDecodeTimeout(VideoDecodeError):
    """Decoding one video took longer than its time limit; the process decoding it was killed."""


class DecoderProcess:
    """A child Python process that decodes for this one, started on first use and killed (SIGKILL, which no signal
    mask blocks) when a decode passes its time limit; the next decode starts a fresh one.

    A fresh interpreter (not a fork): it inherits no threads, locks or CUDA state of a trainer or DataLoader worker,
    and needs no ``if __name__ == "__main__"`` guard in the user's script. It dies with this process (EOF on its pipe,
    and ``PR_SET_PDEATHSIG`` on Linux for when it is stuck). Requests and replies are pickled over a socket pair: the
    function (by reference) and its arguments; the frames come back at the returned size. The caller's callbacks
    (the times and size rules) stay here: the child sends their arguments and waits for the result, so it imports
    only what decoding needs (numpy, PyAV; not torch or transformers) and the callbacks need not pickle.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.proc: subprocess.Popen | None = None
        self.conn: Connection | None = None

    def _start(self) -> None:
        ours, theirs = Pipe(duplex=True)
        code = (
            f"import sys; sys.path[:0] = {list(sys.path)!r}\n"
            f"from lit_videor2.data.decode_process import _serve\n_serve({theirs.fileno()}, {os.getpid()})"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
        )
        theirs.close()
        self.conn = ours

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def run(self, fn: Callable, args: tuple, callbacks: tuple, limit: float, path: str) -> Any:
        """``fn(*args, *proxies)`` in the child, where proxy ``k`` calls ``callbacks[k]`` here (None stays None);
        :class:`VideoDecodeTimeout` when it is not done ``limit`` seconds after the child took the request."""
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self._start()
        assert self.conn is not None and self.proc is not None
        # with this process's working folder: relative paths resolve as they would here (the caller may have moved)
        self.conn.send((fn, args, [c is not None for c in callbacks], os.getcwd()))
        # The child acknowledges once it has unpickled the request (importing what the functions need): the limit
        # counts the decode, not a cold interpreter's imports (bounded apart).
        if not self.conn.poll(max(limit, STARTUP_LIMIT)) or self._reply() != ("started", None):
            self.stop()
            raise VideoDecodeError(f"{path}: the decoding process did not take the request in {STARTUP_LIMIT:g} s")
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.conn.poll(left):
                self.stop()
                raise VideoDecodeTimeout(
                    f"{path}: decoding took longer than the time limit of {limit:g} s (data.decode_time_limit); "
                    f"the decoding process was killed"
                )
            status, value = self._reply()
            if status != "call":
                break
            k, call_args = value
            try:
                answer = ("ok", callbacks[k](*call_args))
            except Exception as e:  # noqa: BLE001 - raised in the child, where the decode stops
                answer = ("error", e)
            self.conn.send(answer)
        if status == "frames":  # a DecodedVideo whose frames follow as raw bytes, read straight into their array
            value.frames = np.empty(value.frames, np.uint8)
            try:
                self.conn.recv_bytes_into(memoryview(value.frames).cast("B"))
            except (EOFError, OSError) as e:
                status, value = "died", f"exit code {self.proc.wait()}, {type(e).__name__}"
                self.stop()
        if status == "died":
            raise VideoDecodeError(f"{path}: the decoding process died ({value})")
        if status == "error":
            raise value
        return value

    def _reply(self) -> tuple[str, Any]:
        try:
            return self.conn.recv()
        except (EOFError, OSError) as e:  # killed by the OOM killer, a crash in native code
            code = self.proc.wait()
            self.stop()
            return "died", f"exit code {code}, {type(e).__name__}"


_process: DecoderProcess | None = None

#: Seconds a decoding process may take to start and unpickle a request (imports), apart from the decode's limit.
STARTUP_LIMIT = 300.0


def decoder_process() -> DecoderProcess:
    """This process's decoding process (a forked DataLoader worker starts its own, never uses its parent's)."""
    global _process
    if _process is None or _process.pid != os.getpid():
        if _process is not None and _process.conn is not None:
            _process.conn.close()  # the parent's pipe, inherited by fork: not ours to use
        _process = DecoderProcess()
    return _process


@atexit.register
def _stop_decoder_process() -> None:
    if _process is not None and _process.pid == os.getpid():
        _process.stop()


class _Callback:
    """In the decoding process: calls the parent's callback ``k`` with these arguments and returns its result."""

    def __init__(self, conn: Connection, k: int) -> None:
        self.conn, self.k = conn, k

    def __call__(self, *args: Any) -> Any:
        self.conn.send(("call", (self.k, args)))
        status, value = self.conn.recv()
        if status == "error":
            raise value
        return value


def _serve(fd: int, parent: int) -> None:
    """The decoding process's loop: run each ``(fn, args)`` received, reply ``("ok", result)`` or ``("error", e)``;
    exit when the parent closes the pipe or dies."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it kills this process
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: killed with the parent, even when stuck
    if os.getppid() != parent:
        return  # the parent died before the line above
    conn = Connection(fd)
    while True:
        try:
            fn, args, have, cwd = conn.recv()
        except (EOFError, OSError):
            return
        except Exception as e:  # noqa: BLE001 - a request that does not unpickle here (a module missing)
            conn.send(("started", None))
            conn.send(("error", RuntimeError(f"the decoding process cannot read the request: {type(e).__name__}: {e}")))
            continue
        conn.send(("started", None))
        try:
            os.chdir(cwd)
            reply = ("ok", fn(*args, *(_Callback(conn, k) if h else None for k, h in enumerate(have))))
        except Exception as e:  # noqa: BLE001 - the caller raises it
            reply = ("error", e)
        if isinstance(getattr(reply[1], "frames", None), np.ndarray):  # a DecodedVideo: frames go as raw bytes
            frames, reply[1].frames = reply[1].frames, reply[1].frames.shape
            conn.send(("frames", reply[1]))
            conn.send_bytes(memoryview(np.ascontiguousarray(frames)).cast("B"))
            continue
        try:
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - an exception that does not pickle
            conn.send(("error", VideoDecodeError(f"{args[0]}: {type(reply[1]).__name__}: {reply[1]} ({e})")))
