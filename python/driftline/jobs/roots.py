"""Job paths confined to ``jobs.roots``, checked where each file and the output directory are opened.

A check at submission alone is not enough: a symlink swapped in before the job runs (or before a resumed job
restarts) would make the job read or write outside the roots. So every input file and the output directory are
opened first and then shown to lie inside the roots by what was opened (``/proc/self/fd`` names the opened file,
whatever the path's symlinks say by now), and the job reads and writes through that descriptor. Symlinks that stay
inside the roots are followed; ones that lead out are refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["Roots", "check_job_paths", "opened", "pinned_dir"]

# Linux: /proc/self/fd/N is the opened file itself, so reading through it cannot be redirected by a later swap.
_PROC_FD = Path("/proc/self/fd")
_HAS_PROC_FD = _PROC_FD.is_dir()
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def check_job_paths(inputs: Iterable[str], output: str) -> None:
    """Refuse a job path that no file system call can take (a NUL byte), naming its field (``inputs[i]``, ``output``).

    Raises:
        BadRequest: a path holds a NUL byte.
    """
    for field, path in [*((f"inputs[{i}]", p) for i, p in enumerate(inputs)), ("output", output)]:
        if "\x00" in path:
            raise BadRequest(f"{field}: a path must not contain a NUL byte, got {path!r}")


class Roots:
    """The directories a server's jobs may read and write below (resolved once, when the server starts)."""

    def __init__(self, roots: Iterable[str | Path]) -> None:
        """Resolve the roots (relative ones against the working directory)."""
        self.paths = [Path(r).resolve() for r in roots]

    def contains(self, path: Path) -> bool:
        """Whether an already resolved path lies at or below a root."""
        return any(path.is_relative_to(r) for r in self.paths)

    def refuse(self, outside: list[str]) -> BadRequest:
        """The error for paths outside every root."""
        return BadRequest(f"paths outside the allowed job roots {[str(r) for r in self.paths]}: {outside}")

    def nearest_existing_inside(self, path: Path) -> None:
        """Check the deepest existing ancestor of a directory about to be created (mkdir must not leave the roots).

        Raises:
            BadRequest: it resolves outside every root.
        """
        probe = path.absolute()
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        real = probe.resolve()
        if not self.contains(real):
            raise self.refuse([f"{path} (via {real})"])

    def verified(self, fd: int, path: Path) -> Path:
        """The path to use for an opened descriptor, once what it opened is shown to lie inside the roots.

        Raises:
            BadRequest: the opened file or directory is outside every root.
        """
        if _HAS_PROC_FD:
            link = _PROC_FD / str(fd)
            real = link.readlink()
            if not self.contains(real):
                raise self.refuse([f"{path} (opened {real})"])
            return link
        # No /proc: re-resolve after opening and require the same file, so a swap in between is caught.
        real = path.resolve()
        opened_stat, resolved_stat = os.fstat(fd), real.stat()
        same = (opened_stat.st_dev, opened_stat.st_ino) == (resolved_stat.st_dev, resolved_stat.st_ino)
        if not same or not self.contains(real):
            raise self.refuse([f"{path} (resolves to {real})"])
        return real


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | _CLOEXEC)
    except OSError as exc:
        raise BadRequest(f"{path}: cannot be opened: {exc.strerror}") from None


@contextlib.contextmanager
def opened(path: Path, roots: Roots | None) -> Iterator[Path]:
    """Open an input file and yield a path that reads exactly the file that was opened and checked.

    Without roots (the command line), the path itself.

    Raises:
        BadRequest: the file cannot be opened, is not a regular file, or lies outside the roots.
    """
    if roots is None:
        yield path
        return
    # O_NONBLOCK: a FIFO swapped in for the file must not hang the job runner in open(); it is refused below.
    fd = _open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadRequest(f"{path}: not a regular file")
        yield roots.verified(fd, path)
    finally:
        os.close(fd)


def pinned_dir(path: Path, roots: Roots | None) -> tuple[int, Path]:
    """Open an existing directory for the job's writes: its descriptor and the path to write through.

    Every later write goes below the returned path, which names the opened directory itself (on Linux), so a swap
    of the directory (or of a symlink above it) after this check cannot move the writes. The caller closes the
    descriptor.

    Raises:
        BadRequest: it is not a directory that can be opened, or lies outside the roots.
    """
    fd = _open(path, os.O_RDONLY | _DIRECTORY)
    try:
        if roots is not None:
            return fd, roots.verified(fd, path)
        return fd, _PROC_FD / str(fd) if _HAS_PROC_FD else path
    except BaseException:
        os.close(fd)
        raise
