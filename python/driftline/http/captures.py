"""Captured predictions over HTTP: export a model's rows (Parquet or JSON lines, streamed), capture's status, and the
erasure of one entity's rows for a data-protection request (audited)."""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
import polars as pl
import pyarrow as pa
from litestar import Controller, Request, delete, get
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Reference, Schema
from litestar.params import QueryParameter
from litestar.response import Stream

from driftline.errors import BadRequest, DriftlineError, ModelNotFound, NotFound
from driftline.feedback.join import Labels
from driftline.http import openapi as doc
from driftline.http import query
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import actor, require_role, require_role_when_keyed
from driftline.store.audit import AuditAction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from driftline.capture.reader import ExportFormat
    from driftline.capture.service import CaptureService
    from driftline.server.services import Services
    from driftline.store.feedback import FeedbackStore

__all__ = ["CaptureErased", "CaptureStatus", "CapturesController", "ErasureController"]

_MEDIA: Final = {"parquet": "application/vnd.apache.parquet", "jsonl": "application/x-ndjson"}
# Bytes the export thread may run ahead of a slow client: its chunks wait in a queue of this many.
_CHUNKS: Final = 16
_WAIT_S: Final = 0.5


class CaptureStatus(msgspec.Struct, frozen=True):
    """Capture's state in this process: its counters, and why it stopped if it did."""

    enabled: bool
    directory: str | None
    captured_rows: int
    dropped_rows: int
    segments: int
    bytes: int
    queue_rows: int
    up: bool
    failed: str | None


class CaptureErased(msgspec.Struct, frozen=True):
    """What an erasure removed."""

    entity: str
    captured_rows: int
    labels: int  # feedback labels removed: the entity's own and those of its captured requests
    kpi_events: int  # KPI events removed, the same way


def _capture(services: Services) -> CaptureService:
    if services.capture is None:
        raise NotFound("capture is not enabled on this server (no [capture] is enabled)")
    return services.capture


class _Aborted(Exception):
    """The client went away: the export thread stops writing."""


class _ChunkSink:
    """A write-only file the export thread writes into; each write becomes a chunk of the response."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(_CHUNKS)
        self.gone = threading.Event()
        self._written = 0

    def write(self, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        while not self.gone.is_set():
            try:
                self.chunks.put(chunk, timeout=_WAIT_S)
            except queue.Full:
                continue
            self._written += len(chunk)
            return len(chunk)
        raise _Aborted

    def tell(self) -> int:
        return self._written

    @property
    def closed(self) -> bool:  # pyarrow's writer asks before it writes
        return False

    def writable(self) -> bool:
        return True

    def close(self) -> None:  # the response ends with end(); pyarrow's writer closes its sink when done
        return None

    def flush(self) -> None:
        return None

    def end(self, error: BaseException | None) -> None:
        while not self.gone.is_set():
            try:
                self.chunks.put(error, timeout=_WAIT_S)
            except queue.Full:
                continue
            return


async def _stream(export: Callable[[_ChunkSink], object]) -> AsyncIterator[bytes]:
    """Run ``export`` on a thread and yield what it writes as it writes it."""
    sink = _ChunkSink()

    def run() -> None:
        try:
            export(sink)
        except _Aborted:
            return
        except Exception as exc:  # noqa: BLE001 - handed to the response, which ends the stream with it
            sink.end(exc)
            return
        sink.end(None)

    worker = threading.Thread(target=run, name="driftline-capture-export", daemon=True)
    worker.start()
    try:
        while True:
            chunk = await asyncio.to_thread(sink.chunks.get)
            if chunk is None:
                return
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk
    finally:
        sink.gone.set()


def _labeled(labels: FeedbackStore, name: str) -> tuple[Callable[[pa.Table], pa.Table], list[pa.Field]]:
    """What turns a segment's rows into its labeled rows with ``target``, and that column's field; the labels
    are read once (on the export thread)."""
    index = Labels(labels.labels(name))

    def through(table: pa.Table) -> pa.Table:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)  # a Table always becomes a DataFrame
        return index.labeled(frame, uniform=True).to_arrow()

    return through, [pa.field("target", pl.Series(dtype=index.target_type()).to_arrow().type)]


@dataclass
class _ExportOperation(Operation):
    """The export's 200: a Parquet file or JSON lines (one captured row per line), never a JSON document."""

    def __post_init__(self) -> None:
        """Document both bodies."""
        ok = (self.responses or {}).get("200")
        if ok is not None and not isinstance(ok, Reference):
            ok.content = {
                media: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, content_media_type=media))
                for media in _MEDIA.values()
            }


class CapturesController(Controller):
    """A model's captured rows, and capture's status."""

    path = "/v1"
    tags = ["capture"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role_when_keyed]  # noqa: RUF012
    security = doc.KEYED_WHEN_CONFIGURED

    @get(
        "/models/{name:str}/captures",
        summary="Export a model's captured rows",
        responses=doc.errors(400, 401, 403, 404),
        operation_class=_ExportOperation,
    )
    async def export(
        self,
        services: ServicesDep,
        name: str,
        since: Annotated[str | None, QueryParameter(schema_extra=query.DATE_TIME)] = None,
        until: Annotated[str | None, QueryParameter(schema_extra=query.DATE_TIME)] = None,
        version: Annotated[str | None, QueryParameter(schema_extra=query.VERSION)] = None,
        format: Annotated[str, QueryParameter(schema_extra={"enum": list(_MEDIA)})] = "parquet",
        labeled: bool = False,
    ) -> Stream:
        """Rows with ``since <= ts < until`` (ISO 8601 with a timezone), of one version or all, oldest first;
        ``labeled=true``: only the rows with a label, each with it in the column ``target`` (a retraining set)."""
        query.choice(format, "format", tuple(_MEDIA))
        start, end = query.moment(since, "since"), query.moment(until, "until")
        number = query.version_number(version)
        capture = _capture(services)
        if not services.table.knows(name)[0] and not capture.index.segments(name):
            raise ModelNotFound(f"model {name!r} not found")
        fmt: ExportFormat = "parquet" if format == "parquet" else "jsonl"
        feedback = services.feedback

        def export(sink: _ChunkSink) -> int:
            through, added = _labeled(feedback, name) if labeled else (None, [])
            return capture.reader.export(sink, fmt, name, number, start, end, through, added)  # type: ignore[arg-type]

        return Stream(
            _stream(export),
            media_type=_MEDIA[format],
            headers={"content-disposition": f'attachment; filename="{name}-captures.{format}"'},
        )

    @get("/captures/status", summary="Capture's state in this process", responses=doc.errors(401, 403))
    async def status(self, services: ServicesDep) -> CaptureStatus:
        """The writer's counters; ``failed`` says why capture stopped (``up`` false), e.g. an unwritable directory."""
        if services.capture is None:
            return CaptureStatus(False, None, 0, 0, 0, 0, 0, True, None)
        f = services.capture.figures()
        return CaptureStatus(
            True,
            str(services.capture.root),
            f.captured,
            f.dropped,
            f.segments,
            f.bytes,
            f.queue_rows,
            f.failed is None,
            f.failed,
        )


class ErasureController(Controller):
    """Erasure of one entity's captured rows (an admin act, always keyed)."""

    path = "/v1/captures"
    tags = ["capture"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role]  # noqa: RUF012
    security = doc.KEYED

    @delete(
        "/",
        summary="Erase every captured row of one entity",
        opt={"role": "admin"},
        status_code=200,
        responses=doc.errors(400, 401, 403, 404),
    )
    async def erase(self, services: ServicesDep, request: Request[Any, Any, Any], entity: str) -> CaptureErased:
        """Delete the rows whose ``parameters.entity`` was ``entity``, in every model (rows still queued first), and
        the entity's feedback labels and KPI events (by entity, and by the request ids of its rows).

        The audit event names the entity by its sha256, so the log itself keeps no personal data.
        """
        if not entity:
            raise BadRequest("query parameter 'entity' must not be empty")
        capture = _capture(services)
        try:
            rows, requests = await asyncio.to_thread(capture.erase, entity)
        except OSError as exc:
            raise DriftlineError(f"erasure stopped part way (run it again): {exc}") from None
        labels = services.feedback.erase_entity(entity, sorted(requests))
        events = services.kpis.store.erase_entity(entity, sorted(requests))
        digest = hashlib.sha256(entity.encode()).hexdigest()
        services.audit.record(
            AuditAction.CAPTURE_ERASED,
            "*",
            actor=actor(request),
            sha256=digest,
            reason=f"erased {rows} captured row(s), {labels} label(s) and {events} KPI event(s) of the entity "
            f"with sha256 {digest}",
        )
        return CaptureErased(entity=entity, captured_rows=rows, labels=labels, kpi_events=events)
