"""``driftline tune``: measure a model's batch, instance, thread, worker and device settings against an SLO.

Progress goes to stderr (a rich bar at a terminal, one line per candidate otherwise), one JSON summary to stdout
(``--json``: the whole result), the report to ``--out``. ``--apply`` writes the recommendation into the model's
config.toml and asks a running server to reload the model through the repository API (audited there).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.cli.client import ApiError, add_client_options, call
from driftline.config import load_settings
from driftline.errors import ConfigError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from driftline.config import ServerSettings
    from driftline.tune.spec import Candidate, Measurement, Point, TuneResult

__all__ = ["add_parser", "parse_duration"]

_DURATION = re.compile(r"\A(\d+(?:\.\d+)?)(ms|s|m|h)?\Z")
_SECONDS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, flag: str, low: float, high: float) -> float:
    """``90s``, ``10m``, ``1.5h``, ``500ms`` or plain seconds, within [low, high].

    Raises:
        ConfigError: naming the flag and what is accepted.
    """
    match = _DURATION.match(text.strip())
    if match is None:
        raise ConfigError(f"{flag} {text!r}: expected a duration like 90s, 10m or 500ms")
    seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if not low <= seconds <= high:
        raise ConfigError(f"{flag} {text!r}: must be between {low:g} s and {high:g} s")
    return seconds


def _repository(args: argparse.Namespace) -> tuple[ServerSettings, Path]:
    """The settings (``--config``, ``--repository``) and the repository they name, which must exist."""
    settings = load_settings(args.config, {"repository": args.repository} if args.repository else None)
    root = Path(settings.repository)
    if not root.is_dir():
        hint = (
            "give --repository DIR"
            if args.repository
            else "`driftline serve` builds the demo there, or give --repository DIR"
        )
        raise ConfigError(f"no model repository at {root} ({hint})")
    return settings, root.resolve()


def _request(args: argparse.Namespace) -> Any:
    from driftline.cli.score import resolve_alias
    from driftline.jobs import parse_model_ref
    from driftline.tune.measure import MeasureSettings
    from driftline.tune.run import TuneRequest
    from driftline.tune.spec import parse_load, parse_slo

    name, ref = parse_model_ref(args.model)
    settings, root = _repository(args)
    version = resolve_alias(settings, name, ref)
    window = parse_duration(args.window, "--window", 0.05, 60)
    measure = MeasureSettings(
        warmup_s=parse_duration(args.warmup, "--warmup", 0, 600),
        window_s=window,
        max_windows=_bounded(args.max_windows, "--max-windows", 3, 100),
    )
    return TuneRequest(
        repository=root,
        model=name,
        version=int(version) if version is not None else None,
        slo=parse_slo(args.slo),
        load=parse_load(args.load, _bounded(args.request_batch, "--request-batch", 1, 4096)),
        search=args.search,
        space=list(args.space),
        budget_s=parse_duration(args.budget, "--budget", 1, 7 * 86400),
        settings=measure,
        server_config=Path(args.config) if args.config else None,
    )


def _bounded(value: int, flag: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ConfigError(f"{flag} {value}: must be in {low}..{high}")
    return value


def _tune(args: argparse.Namespace) -> int:
    from driftline.tune.report import write_report
    from driftline.tune.run import run_tune

    request = _request(args)
    out = Path(args.out or f"tune-{request.model}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    with _progress(request.model) as progress:
        result = run_tune(request, progress)
    files = write_report(result, out)
    applied = _apply(args, request.repository, result) if args.apply else None
    if args.json:
        print(msgspec.json.encode(result).decode())
    else:
        print(msgspec.json.encode(summary(result, files, applied)).decode())
    return 0


def _point(point: Point | None) -> dict[str, float] | None:
    if point is None:
        return None
    return {
        "level": point.level,
        "rps": round(point.rps, 1),
        "p50_ms": round(point.p50_ms, 3),
        "p99_ms": round(point.p99_ms, 3),
    }


def summary(result: TuneResult, files: list[Path], applied: dict[str, Any] | None) -> dict[str, Any]:
    """The one JSON object stdout carries: the recommendation beside the default configuration's numbers."""
    from driftline.tune import recommend

    def numbers(m: Measurement | None) -> dict[str, Any] | None:
        if m is None:
            return None
        best = recommend.best_point(m, result.slo, result.load)
        return {
            "config": m.candidate.values(),
            "meets_slo": best is not None,
            "objective": None
            if (value := recommend.objective(m, result.slo, result.load)) is None
            else round(value, 1),
            "point": _point(best),
            "failed": m.failed,
        }

    chosen = next((m for m in result.ranked if m.candidate == result.recommended), None)
    default = numbers(result.default)
    gain = None
    if chosen is not None and default is not None and default["point"] is not None and result.slo.limit_ms is not None:
        best = recommend.best_point(chosen, result.slo, result.load)
        gain = round(best.rps / default["point"]["rps"], 3) if best and default["point"]["rps"] else None
    return {
        "model": result.model,
        "version": result.version,
        "slo": result.slo.describe(),
        "load": [result.load.describe(level) for level in result.load.levels],
        "search": result.search,
        "points_in_space": result.points_in_space,
        "points_measured": result.points_measured,
        "elapsed_s": round(result.elapsed_s, 1),
        "recommended": numbers(chosen),
        "margin_ms": None if result.margin_ms is None else round(result.margin_ms, 3),
        "default": default,
        "throughput_vs_default": gain,
        "serve_flags": result.serve_flags,
        "report": [str(f) for f in files],
        "applied": applied,
        "notes": result.notes,
    }


def _apply(args: argparse.Namespace, root: Path, result: TuneResult) -> dict[str, Any]:
    """Write the recommendation into config.toml and ask the server at ``--url`` to reload the model."""
    from driftline.tune.apply import write_config

    if result.recommended is None:
        raise ConfigError("--apply: nothing to apply, no measured configuration meets the SLO (see the report)")
    path, backup = write_config(root, result.model, result.recommended, result.backend)
    answer: dict[str, Any] = {"config": str(path), "backup": str(backup), "reloaded": False}
    try:
        call(args, "POST", f"/v2/repository/models/{result.model}/load", {})
    except ApiError as exc:
        answer["why_not_reloaded"] = str(exc)
    else:
        answer["reloaded"] = True
    if result.serve_flags:
        answer["restart_with"] = " ".join(result.serve_flags)
    return answer


@contextlib.contextmanager
def _progress(model: str) -> Iterator[Any]:
    """A rich bar on stderr at a terminal; plain lines, one per candidate, when stderr is a file or a pipe."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from driftline.tune.run import TuneProgress

    console = Console(stderr=True)
    interactive = console.is_interactive
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} configs"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[step]}"),
    )
    with Progress(*columns, console=console, transient=True, disable=not interactive) as bar:
        task = bar.add_task(f"tuning {model}", total=None, step="")

        class Drawn(TuneProgress):
            def planned(self, points: int, search: str, notes: list[str]) -> None:
                bar.update(task, total=points)
                for note in notes:
                    console.print(f"note: {note}", highlight=False)

            def candidate(self, index: int, candidate: Candidate) -> None:
                bar.update(task, step=candidate.label())

            def step(self, message: str) -> None:
                bar.update(task, step=message)

            def measured(self, index: int, measurement: Measurement) -> None:
                bar.update(task, completed=index + 1)
                if not interactive:
                    console.print(_line(index, measurement), highlight=False, soft_wrap=True)

        yield Drawn()


def _line(index: int, m: Measurement) -> str:
    if m.failed:
        return f"[{index}] {m.candidate.label()}: failed: {m.failed}"
    levels = ", ".join(f"{p.level:g}: {p.rps:,.0f} req/s p99 {p.p99_ms:.2f} ms" for p in m.points)
    return f"[{index}] {m.candidate.label()}: {levels}"


def add_parser(sub: Any) -> None:
    """``driftline tune``, under ``sub`` (the main parser's subparsers)."""
    tune = sub.add_parser("tune", help="find the batch/instance/thread/worker/device settings that meet a latency SLO")
    tune.add_argument("model", help="MODEL, MODEL:VERSION or MODEL@ALIAS")
    tune.add_argument("--repository", help="model repository directory (default: the server's, demo-models)")
    tune.add_argument("--config", help="server TOML file (the tuned servers start with it)")
    tune.add_argument("--slo", action="append", required=True, help="p99=10ms (p50/p90/p95/p99) and/or rps>=500")
    tune.add_argument("--load", default="concurrency=1,8,32,64", help="concurrency=N,.. | rate=N,.. | trace")
    tune.add_argument("--request-batch", type=int, default=1, help="rows per request (default 1)")
    tune.add_argument("--search", choices=["brute", "quick"], default="quick", help="how much of the space to measure")
    tune.add_argument("--budget", default="10m", help="time for the whole tune (default 10m)")
    tune.add_argument("--space", action="append", default=[], help="KNOB=v1,v2,.. (repeatable), e.g. instances=1,2")
    tune.add_argument("--window", default="1s", help="measurement window (default 1s)")
    tune.add_argument("--warmup", default="2s", help="warm-up before each load level (default 2s)")
    tune.add_argument("--max-windows", type=int, default=10, help="windows before a point is marked unstable")
    tune.add_argument("--out", help="report directory (default tune-MODEL)")
    tune.add_argument("--json", action="store_true", help="print the whole result instead of the summary")
    tune.add_argument("--apply", action="store_true", help="write the recommendation to config.toml and reload")
    add_client_options(tune)
    tune.set_defaults(func=_tune)
