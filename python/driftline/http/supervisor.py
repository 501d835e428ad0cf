"""uvicorn's server and worker supervisor as ``driftline serve`` runs them: a graceful stop on SIGTERM exits 0, the
supervisor passes every stop signal on to its workers at once (each of them drains: http/drain.py), and a worker
that exits is seen to have exited at once."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.supervisors import Multiprocess

if TYPE_CHECKING:
    import socket
    from collections.abc import Generator
    from types import FrameType

__all__ = ["Server", "Supervisor"]


class Server(uvicorn.Server):
    """uvicorn's server; after a complete graceful stop on SIGTERM the process exits 0.

    uvicorn raises the signals it caught again once it has stopped, for a program that embeds it; nothing here
    wants SIGTERM's default action after the stop it asked for is done (SIGINT still ends with status 130).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """uvicorn's, less SIGTERM's second raise."""
        with super().capture_signals():
            yield
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor; SIGTERM and SIGINT reach every worker at once (as SIGTERM).

    uvicorn queues a signal for its half-second poll and, once stopping, joins its workers without reading the
    queue again: a second SIGTERM never reached them. Sent on at once, every worker turns unready together and sees
    a second signal (which cuts its drain delay short).
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        """Supervise ``config.workers`` workers serving ``sockets``."""
        super().__init__(config, sockets)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        del frame
        self.signal_queue.append(sig)  # uvicorn's own handling: stop the loop, then terminate and join
        for process in self.processes:
            pid = process.pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it has exited, not yet reaped
                    os.kill(pid, signal.SIGTERM)

    def keep_subprocess_alive(self) -> None:
        """uvicorn's check of every worker (a dead or hung one is replaced), with the parent's copy of each worker's
        end of the health-check pipe closed first.

        uvicorn keeps both ends in the parent, so a worker that exits after taking a ping and before answering it
        (a SIGTERM, a restart) never closes the pipe: the ping waited out ``timeout_worker_healthcheck`` (60 s
        here) before the worker was replaced. The worker got its own copy at spawn; with the parent's closed, its
        exit ends the wait at once.
        """
        for process in self.processes:
            process.child_conn.close()  # closing twice is harmless (uvicorn's terminate closes it again)
        super().keep_subprocess_alive()
