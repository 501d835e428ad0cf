"""`driftline drift REFERENCE CURRENT`: exit codes 0/1/2, JSON and HTML output, one-line errors."""

import argparse
import json
import subprocess
import sys

import pytest

from driftline.cli.drift import add_parser, run_drift
from driftline.cli.main import main
from driftline.drift import ReferenceProfile


@pytest.fixture
def files(frames, tmp_path):
    ref, cur = frames
    paths = {
        "ref": tmp_path / "ref.parquet",
        "same": tmp_path / "same.csv",
        "cur": tmp_path / "cur.parquet",
    }
    ref.write_parquet(paths["ref"])
    ref.write_csv(paths["same"])
    cur.write_parquet(paths["cur"])
    return {k: str(v) for k, v in paths.items()}


def test_no_drift_exits_0_with_json(files, capsys):
    assert main(["drift", files["ref"], files["same"]]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "ok"
    assert len(out["features"]) == 5


def test_drift_exits_1(files, capsys):
    assert main(["drift", files["ref"], files["cur"], "--features", "age,city"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in out["features"]] == ["age", "city"]


def test_options(files, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["drift", files["ref"], files["cur"], "--stat", "psi", "--threshold", "5", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert {f["stat"] for f in report["features"]} == {"psi"}
    assert main(["drift", files["ref"], files["cur"], "--preset", "significance", "--categorical", "rooms"]) == 1
    html = tmp_path / "r.html"
    assert main(["drift", files["ref"], files["cur"], "--format", "html", "--out", str(html)]) == 1
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert json.loads(capsys.readouterr().out)["preset"] == "significance"  # the only run that printed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--features", "age,zip"], "zip"),
        (["--stat", "t-test"], "unknown statistic"),
        (["--stat", "wasserstein"], "no default threshold"),
        (["--categorical", "nope"], "nope"),
        (["--threshold", "-1"], "threshold must be a finite number >= 0, got -1.0"),
        (["--threshold", "nan"], "threshold must be a finite number >= 0, got nan"),
        (["--threshold", "inf", "--stat", "psi"], "threshold must be a finite number >= 0, got inf"),
        (["--preset", "significance", "--threshold", "1"], "p-value threshold (ks is a test) and must be in (0, 1)"),
        (["--preset", "significance", "--threshold", "0"], "must be in (0, 1)"),
        (["--stat", "chi2", "--features", "age,income"], "'chi2' applies to none of the features (all numeric)"),
        (["--features", "age,age"], "named more than once: ['age']"),
        (["--drift-share", "1.5"], "drift_share"),
    ],
)
def test_bad_input_exits_2_with_one_line(files, capsys, extra, message):
    assert main(["drift", files["ref"], files["cur"], *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_file_exits_2(files, capsys):
    assert main(["drift", files["ref"], "/nonexistent/cur.parquet"]) == 2
    assert "no such file: /nonexistent/cur.parquet" in capsys.readouterr().err


def test_profile_as_reference(files, frames, tmp_path, capsys):
    profile_path = tmp_path / "ref.profile"
    ReferenceProfile.build(frames[0]).save(profile_path)
    assert main(["drift", str(profile_path), files["cur"]]) == 1
    assert json.loads(capsys.readouterr().out)["n_ref_rows"] == 600


def test_subparser_for_the_main_cli(files, capsys):
    parser = argparse.ArgumentParser(prog="driftline")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["drift", files["ref"], files["same"], "--format", "json"])
    assert args.func is run_drift
    assert run_drift(args) == 0
    capsys.readouterr()


def test_module_entry_point(files):
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "drift", files["ref"], "missing.csv"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "driftline: error: no such file: missing.csv"
