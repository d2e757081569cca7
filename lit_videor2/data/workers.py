"""DataLoader worker set-up shared by the data module's loaders."""

from __future__ import annotations

import signal

#: Signals a cluster sends the whole process group to preempt a job (SIGTERM; SLURM's requeue signal, often USR1/2).
WORKER_IGNORED_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


def ignore_preemption_signals(worker_id: int | None = None) -> None:
    """``worker_init_fn`` of the data module's loaders: ignore SIGTERM/SIGUSR1/SIGUSR2 in a DataLoader worker.

    A cluster that signals the whole process group would otherwise kill the workers at once (torch's worker
    handler dies on a SIGTERM that does not come from its parent), and the main process would fail the step with
    "DataLoader worker exited unexpectedly" before it can save. Workers still exit with their main process.
    """
    for name in WORKER_IGNORED_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)
