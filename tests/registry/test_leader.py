"""The sync's leader lock: one holder per cache folder, taken over when the holder lets go or its process dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from driftline.registry.leader import LeaderLock


def test_one_holder_at_a_time_and_the_next_takes_over(tmp_path: Path):
    first, second = LeaderLock(tmp_path / "cache"), LeaderLock(tmp_path / "cache")
    assert first.acquire()
    assert first.acquire()  # held already: still the leader
    assert first.held
    assert (tmp_path / "cache" / ".sync.lock").is_file()
    assert not second.acquire()
    assert not second.held
    first.release()
    first.release()  # letting go twice is harmless
    assert second.acquire()
    assert not first.acquire()
    second.release()


def test_a_dead_leaders_lock_is_free(tmp_path: Path):
    held = tmp_path / "held"
    holder = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from driftline.registry.leader import LeaderLock
        lock = LeaderLock(Path({str(tmp_path / "cache")!r}))
        assert lock.acquire()
        Path({str(held)!r}).touch()
        time.sleep(120)
        """
    )
    lock = LeaderLock(tmp_path / "cache")
    with subprocess.Popen([sys.executable, "-c", holder]) as proc:
        try:
            deadline = time.monotonic() + 60
            while not held.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert held.exists()
            assert not lock.acquire()
        finally:
            proc.kill()  # no release: the kernel lets the lock go with the process
            proc.wait(timeout=30)
    assert lock.acquire()
    lock.release()
