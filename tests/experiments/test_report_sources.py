"""ExperimentSources.gather and ExperimentReports.report on a real store: captured segments written by the capture
writer, labels and KPI events in SQLite, traffic counts of two processes; units per arm, shadow pairs, the window,
one read of the captures per report, and the Conflicts that name the metric."""

from __future__ import annotations

import asyncio
import dataclasses
from bisect import bisect_left
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from tests.capture.conftest import batch, db, index, root  # noqa: F401 - fixtures
from tests.helpers import IRIS_QUALITY, write_config

from driftline.capture import CaptureReader, CaptureWriter
from driftline.errors import Conflict
from driftline.experiments.data import ExperimentSources
from driftline.experiments.report import ExperimentReports
from driftline.experiments.spec import Arm, Design, Experiment, ExperimentSpec, Metric
from driftline.feedback.kpis import Kpis
from driftline.feedback.service import LiveQuality
from driftline.repository import Repository
from driftline.repository.demo import build_classifier_onnx
from driftline.serving.table import ModelTable
from driftline.serving.traffic import Traffic
from driftline.store.feedback import Feedback, FeedbackStore
from driftline.store.kpis import KpiEvent, KpiStore
from driftline.store.traffic import LATENCY_BOUNDS, TrafficRow, TrafficStore

# Within the traffic table's retention (rows older than 30 days are deleted when a process saves).
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
END = T0 + timedelta(hours=10)
CONVERSION = Metric(name="conversion", kind="kpi", direction="increase")
ACCURACY = Metric(name="accuracy", kind="quality", direction="increase", quality="accuracy")
ERRORS = Metric(name="error_rate", kind="error_rate", direction="decrease")
LATENCY = Metric(name="latency", kind="latency_p99", direction="decrease")


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


class CountingReader(CaptureReader):
    """The real reader, counting the whole-frame reads a report makes, and its reads of key columns alone."""

    frames = 0
    columns_read = 0

    def frame(self, *args, **kwargs):
        CountingReader.frames += 1
        return super().frame(*args, **kwargs)

    def columns(self, *args, **kwargs):
        CountingReader.columns_read += 1
        return super().columns(*args, **kwargs)


@pytest.fixture
def table(tmp_path, iris_weights):
    loop = asyncio.new_event_loop()
    for model, config in (("iris", IRIS_QUALITY), ("plain", "max_batch_size = 8\n")):
        build_classifier_onnx(tmp_path / "models" / model / "1" / "model.onnx", *iris_weights)
        write_config(tmp_path / "models" / model, config)
    yield ModelTable(Repository(tmp_path / "models"), loop)
    loop.close()


@pytest.fixture
def writer(root, index):  # noqa: F811
    w = CaptureWriter(root, index, queue_rows=10_000, segment_rows=500, segment_seconds=3600)
    yield w
    w.close(30)


def _spec(*metrics: Metric, design: Design | None = None) -> ExperimentSpec:
    return ExperimentSpec(
        name="exp",
        arms=[Arm("champion", "1"), Arm("challenger", "2")],
        design=design or Design(canary=50),
        metrics=list(metrics),
        primary=metrics[0].name,
        min_sample=10,
    )


def _experiment(spec: ExperimentSpec, model: str = "iris") -> Experiment:
    return Experiment(3, model, spec, {"champion": 1, "challenger": 2}, "running", T0, "tester")


def _sources(root, index, db, table, reader_class=CaptureReader) -> ExperimentSources:  # noqa: F811
    reader = reader_class(root, index)
    quality = LiveQuality(table, FeedbackStore(db), reader)
    return ExperimentSources(quality, Kpis(KpiStore(db), reader), Traffic(TrafficStore(db), "reporter"))


def _traffic(db, minute0: int) -> None:  # noqa: F811
    """Two processes' counts: routed requests of both versions in the window, plus named ones and counts from
    before the window, which the report leaves out."""
    bucket = bisect_left(LATENCY_BOUNDS, 0.004)
    store = TrafficStore(db)
    rows = []
    for m in range(600):  # the ten hours, a row per minute per version
        rows.append(TrafficRow("iris", 1, True, minute0 + m, 10, 0, {bucket: 10}))
        rows.append(TrafficRow("iris", 2, True, minute0 + m, 10, 1, {bucket + 5: 9}))
    rows.append(TrafficRow("iris", 2, False, minute0 + 5, 1000, 1000, {}))  # pinned: not the experiment's
    rows.append(TrafficRow("iris", 1, True, minute0 - 60, 1000, 1000, {}))  # before it started
    store.add("worker-1", rows[: len(rows) // 2])
    store.add("worker-2", rows[len(rows) // 2 :])


def test_a_canary_report_from_real_captures_labels_kpis_and_traffic(root, index, db, table, writer):  # noqa: F811
    rng = np.random.default_rng(4)
    labels, events = [], []
    expected = {1: [0, 0, 0], 2: [0, 0, 0]}  # version -> [requests, correct labeled rows, conversions]
    for i in range(400):
        version = 1 + i % 2
        rid = f"r{i}"
        at = T0 + timedelta(seconds=80 * i)
        arm = "default" if version == 1 else "canary"
        request = dataclasses.replace(batch(rid, rows=2, version=version, ts_us=_us(at), seed=i), arm=arm)
        writer.submit(request)
        expected[version][0] += 1
        predicted = int(request.outputs["label"][0])
        right = rng.random() < (0.6 if version == 1 else 0.9)
        labels.append(Feedback(target=str(predicted if right else (predicted + 1) % 3), request_id=rid, row=0))
        expected[version][1] += right
        if rng.random() < (0.1 if version == 1 else 0.3):
            events.append(KpiEvent(name="conversion", value=1.0, request_id=rid, at_us=_us(at) + 1))
            expected[version][2] += 1
    # No units: the challenger's shadow copy of a champion request, requests that named a version or an alias,
    # and a request before the window.
    writer.submit(dataclasses.replace(batch("r0", rows=2, version=2, ts_us=_us(T0)), arm="shadow"))
    writer.submit(dataclasses.replace(batch("named", rows=2, version=2, ts_us=_us(T0)), arm="pinned"))
    writer.submit(dataclasses.replace(batch("aliased", rows=2, version=1, ts_us=_us(T0)), arm="alias"))
    writer.submit(dataclasses.replace(batch("early", version=1, ts_us=_us(T0 - timedelta(hours=1))), arm="default"))
    labels += [Feedback(target="0", request_id=rid, row=0) for rid in ("r0", "named", "aliased", "early")]
    events.append(KpiEvent(name="revenue", value=9.0, request_id="r1", at_us=_us(T0)))  # another KPI
    assert writer.flush(30)
    FeedbackStore(db).put("iris", labels)
    KpiStore(db).put("iris", events)
    _traffic(db, _us(T0) // 60_000_000)
    CountingReader.frames = 0
    sources = _sources(root, index, db, table, CountingReader)
    spec = _spec(CONVERSION, ACCURACY, ERRORS, LATENCY)
    data = sources.gather(_experiment(spec), until=END)
    assert (data.start, data.end, data.unit) == (T0, END, "request")
    assert data.assignments == {"champion": 6000, "challenger": 6000}
    assert (data.traffic["challenger"].requests, data.traffic["challenger"].errors) == (6000, 600)
    conversion = data.units["conversion"]
    assert [len(conversion[a].values) for a in ("champion", "challenger")] == [200, 200]
    assert [conversion[a].values.sum() for a in ("champion", "challenger")] == [expected[1][2], expected[2][2]]
    accuracy = data.units["accuracy"]
    assert [len(accuracy[a].values) for a in ("champion", "challenger")] == [200, 200]  # labeled rows
    assert [accuracy[a].values.sum() for a in ("champion", "challenger")] == [expected[1][1], expected[2][1]]
    assert data.series
    assert sum(step["champion"].requests for _, step in data.series if "champion" in step) == 6000
    assert all(T0 < at <= END for at, _ in data.series)
    assert CountingReader.frames == 1

    CountingReader.frames = CountingReader.columns_read = 0
    report = ExperimentReports(sources).report(_experiment(spec), until=END)
    assert CountingReader.frames == 1  # one read of the captures per report, whatever the metrics
    assert CountingReader.columns_read == 0  # the KPI attribution reads no segment again
    by_name = {m.name: m for m in report.metrics}
    assert by_name["conversion"].comparisons[0].verdict == "better"
    assert by_name["accuracy"].comparisons[0].verdict == "better"
    assert by_name["error_rate"].comparisons[0].verdict == "worse"
    assert by_name["latency"].comparisons[0].verdict == "worse"
    assert by_name["latency"].arms[0].mean == pytest.approx(LATENCY_BOUNDS[bisect_left(LATENCY_BOUNDS, 0.004)] * 1e3)
    assert report.as_of == END
    assert report.sample_ratio is not None
    assert not report.sample_ratio.flagged


def test_a_shadow_pairs_the_rows_both_versions_answered(root, index, db, table, writer):  # noqa: F811
    labels = []
    for i in range(60):
        rid, at = f"s{i}", _us(T0 + timedelta(minutes=i))
        primary = dataclasses.replace(
            batch(rid, rows=2, version=1, ts_us=at, seed=i), arm="default", latency_us=1000 + 10 * i
        )
        copy = dataclasses.replace(
            batch(rid, rows=2, version=2, ts_us=at, seed=i + 1000), arm="shadow", latency_us=3000 + 7 * i
        )
        writer.submit(primary)
        writer.submit(copy)
        labels.append(Feedback(target=str(int(primary.outputs["label"][1])), request_id=rid, row=1))
    writer.submit(dataclasses.replace(batch("lonely", version=1, ts_us=_us(T0)), arm="default"))  # no shadow copy
    writer.submit(dataclasses.replace(batch("named", version=1, ts_us=_us(T0)), arm="pinned"))  # not the experiment's
    writer.submit(dataclasses.replace(batch("named", version=2, ts_us=_us(T0)), arm="shadow"))
    assert writer.flush(30)
    FeedbackStore(db).put("iris", labels)
    spec = _spec(ACCURACY, LATENCY, design=Design(shadow=100))
    data = _sources(root, index, db, table).gather(_experiment(spec), until=END)
    accuracy = data.pairs["accuracy"]
    assert len(accuracy.control) == 60
    assert accuracy.control.sum() == 60  # every label is the champion's own answer
    latency = data.pairs["latency"]
    assert len(latency.control) == 60  # per request, the lonely one has no pair
    assert list(latency.control) == pytest.approx([1 + i / 100 for i in range(60)])  # ms, in capture order
    assert list(latency.treatment - latency.control) == pytest.approx([2 - 3 * i / 1000 for i in range(60)])
    report = ExperimentReports(_sources(root, index, db, table)).report(_experiment(spec), until=END)
    assert report.sample_ratio is None
    assert all(m.comparisons[0].paired for m in report.metrics)
    assert report.metrics[1].comparisons[0].verdict == "worse"  # about 2 ms slower on every request


def test_a_split_counts_entities(root, index, db, table, writer):  # noqa: F811
    for i in range(30):
        version, entity = 1 + i % 2, f"user-{i % 10}"
        writer.submit(
            dataclasses.replace(
                batch(f"q{i}", version=version, ts_us=_us(T0 + timedelta(minutes=i)), entity=entity), arm="split"
            )
        )
    assert writer.flush(30)
    KpiStore(db).put(
        "iris", [KpiEvent(name="conversion", value=2.0, entity="user-1", at_us=_us(END - timedelta(minutes=1)))]
    )
    design = Design(split={"champion": 50, "challenger": 50}, parameter="entity")
    data = _sources(root, index, db, table).gather(_experiment(_spec(CONVERSION, design=design)), until=END)
    assert data.unit == "entity"
    units = data.units["conversion"]
    assert len(units["champion"].values) == 5  # users 0, 2, 4, 6, 8 met version 1
    assert len(units["challenger"].values) == 5
    assert units["challenger"].values.sum() == 2.0  # user-1's event, on its latest request's version


def test_kpi_and_quality_metrics_need_capture_and_quality(root, index, db, table):  # noqa: F811
    no_capture = ExperimentSources(
        LiveQuality(table, FeedbackStore(db), None), Kpis(KpiStore(db), None), Traffic(TrafficStore(db))
    )
    with pytest.raises(Conflict, match=r"metrics\['conversion'\] needs captured rows.*capture on for model 'iris'"):
        no_capture.gather(_experiment(_spec(CONVERSION)), until=END)
    # Traffic metrics need no capture.
    assert no_capture.gather(_experiment(_spec(ERRORS)), until=END).assignments == {"champion": 0, "challenger": 0}
    sources = _sources(root, index, db, table)
    with pytest.raises(Conflict, match=r"metrics\['accuracy'\] is a quality metric: model 'plain' has no \[quality\]"):
        sources.gather(_experiment(_spec(ACCURACY), model="plain"), until=END)
