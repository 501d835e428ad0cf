"""Metrics that add up across worker processes: each ``GET /metrics`` fans out to the siblings at scrape time.

Every worker keeps its own live counters (collectors read live objects, nothing is paid per request). With
``--workers N`` the parent hands every worker one fresh directory (``http.metrics_dir``); each worker claims a slot
(``worker-<i>.lock``, held by ``flock`` for the life of the process, so a replacement takes the slot of the worker
it replaces) and answers connections on ``worker-<i>.sock`` with a snapshot of its own registry. The worker asked
for ``/metrics`` merges its own snapshot, its siblings' and the final counters of workers that exited cleanly
(``exited-<token>.msgpack``): counters and histograms are summed per label set, gauges summed unless listed below,
process metrics carry a ``worker`` label and so stay apart. A crashed worker's counts are lost (Prometheus sees
a counter reset, which ``rate()`` handles). Triton's ``/v2/models/stats`` asks the same sockets for the live
workers' statistics and sums them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from driftline.errors import ConfigError
from driftline.ops.collector import STORE_GAUGES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from prometheus_client import CollectorRegistry

__all__ = [
    "HIGHEST_GAUGES",
    "LOWEST_GAUGES",
    "METRICS",
    "SHARED_GAUGES",
    "STATS",
    "Family",
    "Snapshot",
    "TritonEntry",
    "WorkerMetrics",
    "add_triton",
    "final_counters",
    "merge",
    "snapshot",
]

_log = logging.getLogger("driftline.server")

#: Gauges whose value comes from the shared store (or the shared repository), so every worker reports the same:
#: taken once (the largest value any worker reports, which is that value when they agree), never summed.
SHARED_GAUGES: frozenset[str] = (
    frozenset(
        {
            "driftline_alias_version",
            "driftline_failed_versions",
            "driftline_registry_last_success_timestamp_seconds",
            "driftline_registry_failed_versions",
            "driftline_registry_deleted_but_held",
            "driftline_quality",
            "driftline_quality_labeled_rows",
            "driftline_quality_coverage_ratio",
        }
    )
    | STORE_GAUGES
)  # the SLO objective, threshold, burn rates and budget left, computed from the shared history
#: Per-worker health and drift verdicts where the worst worker speaks for the server: the lowest value (an
#: alert on ``== 0`` or ``< 0.05`` fires when any worker is down or drifting).
LOWEST_GAUGES: frozenset[str] = frozenset({"driftline_registry_up", "driftline_capture_up", "driftline_drift_pvalue"})
#: As above, the highest value: the most drifted worker's window.
HIGHEST_GAUGES: frozenset[str] = frozenset({"driftline_drift_distance", "driftline_drift_detected"})
#: Families kept apart per worker (a `worker` label) and never written to an exited worker's final file.
PROCESS_PREFIX = "process_"
_SUMMED_TYPES = frozenset({"counter", "histogram", "summary"})

# A sibling that has not answered within this many seconds is left out of the scrape (and counted as missing).
_SIBLING_TIMEOUT_S = 1.0
_SOCKET = "worker-{}.sock"
_LOCK = "worker-{}.lock"
_EXITED = "exited-{}.msgpack"


class Family(msgspec.Struct, array_like=True, frozen=True):
    """One metric family as a registry collects it; samples are ``(name, labels, value)``."""

    name: str
    type: str
    documentation: str
    unit: str
    samples: list[tuple[str, dict[str, str], float]]


class Snapshot(msgspec.Struct, array_like=True, frozen=True):
    """What one worker answers: its pid, its slot, and a token of its own (so a worker seen live and in its
    exit file in one scrape counts once)."""

    pid: int
    worker: str
    token: str
    families: list[Family]


#: One Triton statistics entry (``ModelStats.as_triton``): ints, a name, a version, nested dicts, batch_stats.
TritonEntry = dict[str, Any]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)
_stats_decoder = msgspec.msgpack.Decoder(list[TritonEntry])
# What a sibling is asked for: one line.
METRICS, STATS = b"metrics\n", b"stats\n"


def _families(metrics: Iterable[Metric]) -> list[Family]:
    return [
        Family(m.name, m.type, m.documentation, m.unit, [(s.name, s.labels, float(s.value)) for s in m.samples])
        for m in metrics
    ]


def snapshot(registry: Collector, worker: str, token: str) -> Snapshot:
    """The registry's families now, as worker ``worker`` (a slot) whose token is ``token``."""
    return Snapshot(os.getpid(), worker, token, _families(registry.collect()))


def _combiner(family: Family, sample: str) -> Callable[[float, float], float]:
    if family.type in _SUMMED_TYPES:
        # A `_created` sample is a timestamp: the earliest one is when the summed series began.
        return min if sample.endswith("_created") else _add
    if family.name in LOWEST_GAUGES:
        return min
    if family.name in SHARED_GAUGES or family.name in HIGHEST_GAUGES or family.type in {"info", "stateset"}:
        return max
    return _add


def _add(a: float, b: float) -> float:
    return a + b


def merge(parts: Iterable[Snapshot], latest: bool = False) -> list[Metric]:
    """Merge snapshots of different workers into one set of families (first seen first, in their order).

    ``latest``: the parts are snapshots of one worker taken one after the other, so each counter sample is its
    largest value (counters never go backwards) instead of the sum.
    """
    kinds: dict[str, Family] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for part in parts:
        for family in part.families:
            kind = kinds.setdefault(family.name, family)
            series = values.setdefault(family.name, {})
            for name, labels, value in family.samples:
                key = (name, tuple(sorted(labels.items())))
                old = series.get(key)
                if old is None:
                    series[key] = value
                else:
                    series[key] = max(old, value) if latest else _combiner(kind, name)(old, value)
    merged = []
    for name, kind in kinds.items():
        metric = Metric(name, kind.documentation, kind.type, kind.unit)
        for (sample, pairs), value in values[name].items():
            metric.add_sample(sample, dict(pairs), value)
        merged.append(metric)
    return merged


def final_counters(parts: Iterable[Snapshot]) -> Snapshot:
    """An exiting worker's last counters and histograms (its gauges and process figures go with it); ``parts``
    are its snapshots in the order taken."""
    parts = list(parts)
    kept = [m for m in merge(parts, latest=True) if m.type in _SUMMED_TYPES and not m.name.startswith(PROCESS_PREFIX)]
    return Snapshot(parts[0].pid, parts[0].worker, parts[0].token, _families(kept))


def add_triton(a: TritonEntry, b: TritonEntry) -> TritonEntry:
    """Two workers' statistics of one version: counts and nanoseconds summed, batch_stats per batch size, the
    latest ``last_inference``."""
    out: TritonEntry = {}
    for key, value in a.items():
        other = b.get(key)
        if key in {"name", "version", "batch_size"} or other is None:
            out[key] = value
        elif key == "last_inference":
            out[key] = max(value, other)
        elif key == "batch_stats":
            sizes = {s["batch_size"]: s for s in value}
            for s in other:
                size = s["batch_size"]
                sizes[size] = add_triton(sizes[size], s) if size in sizes else s
            out[key] = [sizes[size] for size in sorted(sizes)]
        elif isinstance(value, dict):
            out[key] = add_triton(value, other)
        else:
            out[key] = value + other
    return out


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


def _claim_slot(directory: Path) -> tuple[int, int]:
    """The lowest free slot and the descriptor whose lock holds it (released by the kernel when we exit)."""
    index = 0
    while True:
        fd = os.open(directory / _LOCK.format(index), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            index += 1
            continue
        return index, fd


class WorkerMetrics:
    """This worker's end of the fan-out: its socket, its slot, and the merged scrape."""

    def __init__(self, directory: Path, registry: CollectorRegistry) -> None:
        """Claim a slot in ``directory`` (the parent's per-server directory) for ``registry``'s figures."""
        self.directory = directory
        self._registry = registry
        try:
            index, self._lock_fd = _claim_slot(directory)
        except OSError as exc:
            raise ConfigError(
                f"http.metrics_dir {directory}: {exc.strerror} (driftline serve --workers sets it)"
            ) from None
        self.worker = str(index)
        self._path = directory / _SOCKET.format(index)
        self._token = uuid.uuid4().hex
        self._server: asyncio.AbstractServer | None = None
        self._shutdown: list[Snapshot] = []
        self._stats: Callable[[], list[TritonEntry]] = list

    def local(self) -> Snapshot:
        """This worker's own figures now."""
        return snapshot(self._registry, self.worker, self._token)

    async def start(self, stats: Callable[[], list[TritonEntry]]) -> None:
        """Answer siblings on this slot's socket (a file a crashed predecessor in the slot left is replaced);
        ``stats``: this worker's Triton statistics of every loaded version."""
        self._stats = stats
        self._path.unlink(missing_ok=True)
        try:
            self._server = await asyncio.start_unix_server(self._answer, path=str(self._path))
        except OSError as exc:  # e.g. a path past the 107 bytes a unix socket's may have: a shorter $TMPDIR
            raise ConfigError(f"http.metrics_dir: cannot listen on {self._path}: {exc}") from None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_SIBLING_TIMEOUT_S):
                request = await reader.readline()
            writer.write(_encoder.encode(self._stats() if request == STATS else self.local()))
            await writer.drain()
        except (OSError, TimeoutError):
            pass  # the sibling gave up (its timeout): nothing to answer
        finally:
            writer.close()

    async def _ask(self, path: Path, request: bytes) -> bytes | None:
        try:
            async with asyncio.timeout(_SIBLING_TIMEOUT_S):
                reader, writer = await asyncio.open_unix_connection(str(path))
                try:
                    writer.write(request)
                    return await reader.read()
                finally:
                    writer.close()
        except (OSError, TimeoutError):
            return None

    async def _ask_all(self, request: bytes, decoder: msgspec.msgpack.Decoder[Any]) -> list[Any]:
        """Every sibling's answer, asked at once; None for one that did not answer in time."""
        siblings = sorted(p for p in self.directory.glob(_SOCKET.format("*")) if p != self._path)
        out = []
        for data in await asyncio.gather(*(self._ask(p, request) for p in siblings)):
            try:
                out.append(None if data is None else decoder.decode(data))
            except msgspec.DecodeError:
                out.append(None)
        return out

    async def triton_stats(self, entries: list[TritonEntry]) -> list[TritonEntry]:
        """``entries`` (this worker's, for the versions asked about) with every live sibling's figures of the same
        versions added (an exited worker's are not kept: these go back when one is replaced)."""
        theirs: dict[tuple[str, str], list[TritonEntry]] = {}
        for answer in await self._ask_all(STATS, _stats_decoder):
            for entry in answer or ():
                theirs.setdefault((entry["name"], entry["version"]), []).append(entry)
        out = []
        for entry in entries:
            for other in theirs.get((entry["name"], entry["version"]), ()):
                entry = add_triton(entry, other)
            out.append(entry)
        return out

    async def scrape(self) -> bytes:
        """The text exposition of every live worker plus every cleanly exited one's final counters."""
        answers = await self._ask_all(METRICS, _decoder)
        live = [self.local(), *(a for a in answers if a is not None)]
        # Read after the live answers: a worker writes its file before it closes its socket, so one that exits
        # meanwhile is seen once either way (it answered live, or its file is there).
        seen = {s.token for s in live}
        exited = [s for s in self._exited() if s.token not in seen]
        missing = Metric(
            "driftline_metrics_workers_missing", "Sibling workers that did not answer this scrape", "gauge"
        )
        missing.add_sample("driftline_metrics_workers_missing", {}, float(answers.count(None)))
        return generate_latest(_Fixed([*merge([*live, *exited]), missing]))

    def _exited(self) -> list[Snapshot]:
        out = []
        for path in sorted(self.directory.glob(_EXITED.format("*"))):
            with contextlib.suppress(OSError, msgspec.DecodeError):
                out.append(_decoder.decode(path.read_bytes()))
        return out

    def keep_final(self) -> None:
        """Snapshot at the start of shutdown, while the models are still loaded (the HTTP server has answered
        every request by then); :meth:`close` takes one more after the rest of the server closed."""
        self._shutdown.append(self.local())

    async def close(self) -> None:
        """Write this worker's final counters, then stop answering and give up the slot."""
        final = final_counters([*self._shutdown, self.local()])
        target = self.directory / _EXITED.format(final.token)
        tmp = target.with_suffix(".tmp")
        try:
            tmp.write_bytes(_encoder.encode(final))
            tmp.replace(target)  # atomic: a scrape reads all of it or none
        except OSError as exc:  # the parent removed the directory (it is exiting too): nothing to keep
            _log.debug("final metrics not written to %s: %s", target, exc)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._path.unlink(missing_ok=True)
        os.close(self._lock_fd)
