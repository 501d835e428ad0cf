"""The report: the HTML and the JSON carry the same measurements, the chosen one marked, the patch written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from tests.tune.synthetic import point

from driftline.tune.recommend import patch_toml, rank
from driftline.tune.report import write_report
from driftline.tune.spec import Candidate, Load, Measurement, Slo, TuneResult

if TYPE_CHECKING:
    from pathlib import Path


def test_html_and_json_agree(tmp_path: Path) -> None:
    slo, load = Slo("p99", 5.0, None), Load("concurrency", (1.0, 8.0))
    default = Measurement(Candidate(), [point(1, 100, 2.0), point(8, 300, 7.0)])
    better = Measurement(Candidate(instances=2), [point(1, 120, 1.5), point(8, 600, 4.0, stable=False)])
    broken = Measurement(Candidate(device="cuda:0"), [], failed="<no GPU> & more")
    measured = [default, better, broken]
    result = TuneResult(
        "iris",
        1,
        "onnx",
        slo,
        load,
        "brute",
        {"instances": [1, 2]},
        3,
        measured,
        default,
        rank(measured, slo, load),
        better.candidate,
        600.0,
        1.0,
        patch_toml(better.candidate, "onnx"),
        [],
        [],
        1,
        60,
    )
    paths = write_report(result, tmp_path / "out")
    html = paths[0].read_text()
    back = msgspec.json.decode(paths[1].read_bytes(), type=TuneResult)
    assert back == result
    assert paths[2].read_text() == result.patch_toml
    for m in back.measurements:
        assert f'data-label="{m.candidate.label()}"' in html
    assert f'class="chosen" data-label="{better.candidate.label()}" data-level="8"' in html
    assert "&lt;no GPU&gt; &amp; more" in html
    assert "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
