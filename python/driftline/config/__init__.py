"""Server settings: built once at start from an optional TOML file and ``DRIFTLINE_*`` variables.

Precedence (lowest to highest): defaults, the TOML file, environment variables, explicit overrides (the CLI flags).
Environment variables name a key as ``DRIFTLINE_KEY`` for top-level keys and ``DRIFTLINE_SECTION__KEY`` for nested ones.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.config.http import HttpSettings
from driftline.errors import ConfigError
from driftline.logs.settings import LogSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "LOG_LEVELS",
    "AlertSettings",
    "ApiKeySetting",
    "AuthSettings",
    "CaptureSettings",
    "DriftSettings",
    "ExperimentSettings",
    "FeedbackSettings",
    "HttpSettings",
    "JobSettings",
    "QualitySettings",
    "RegistrySettings",
    "ServerSettings",
    "SloSettings",
    "load_settings",
]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

ENV_PREFIX = "DRIFTLINE_"
# DRIFTLINE_* variables that are not settings: the config file's path, and what the `driftline models` client reads.
_NOT_SETTINGS = frozenset({"DRIFTLINE_CONFIG", "DRIFTLINE_URL", "DRIFTLINE_API_KEY"})


class JobSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Bulk scoring jobs submitted over HTTP."""

    # Jobs may read and write only below these directories (relative ones are taken from the working directory).
    roots: list[str] = msgspec.field(default_factory=lambda: ["."])


class DriftSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Live drift windows and alerts (per-model statistics and thresholds live in each config.toml's [drift])."""

    window_rows: int | None = 10_000
    window_seconds: float | None = None
    # Closed windows kept for the sliding view.
    keep: int = 6
    # Rows sampled per feature for KS / Wasserstein when a window holds more.
    sample_cap: int = 100_000
    # Seconds between evaluations of every watched version (state changes become alerts); 0 = only on request.
    check_interval_s: float = 10.0
    # Also receive quality events, as [alerts] webhooks does (kept so existing configs keep working).
    webhooks: list[str] = msgspec.field(default_factory=list)
    # Seconds between saves of this process's windows to the store, which reports merge over every process.
    persist_interval_s: float = 5.0
    # Seconds a process's saved windows still count after its last save (it shut down, restarted or died).
    retain_s: float = 900.0

    def __post_init__(self) -> None:
        _check_urls("drift.webhooks", self.webhooks)
        if not self.persist_interval_s > 0 or not self.retain_s >= self.persist_interval_s:
            raise ValueError("drift.persist_interval_s must be > 0 and drift.retain_s at least as long")


def _check_urls(key: str, urls: list[str]) -> None:
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise ValueError(f"{key} must be http:// or https:// URLs, got {bad}")


class AlertSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where alert events go: every drift and quality state change is POSTed (JSON, ``"kind"`` tells them apart)
    to each of these, and to ``[drift] webhooks``, by one sender thread with retries and backoff."""

    webhooks: list[str] = msgspec.field(default_factory=list)
    # Attempts after the first, and the wait before the first retry (doubling after each).
    retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        _check_urls("alerts.webhooks", self.webhooks)
        if self.retries < 0 or not self.backoff_s >= 0 or not self.timeout_s > 0:
            raise ValueError("alerts.retries and alerts.backoff_s must be >= 0 and alerts.timeout_s > 0")


class QualitySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Live quality checks (each model's metrics and alert rules live in its config.toml's ``[quality]``)."""

    # Seconds between checks of every loaded version of a model with [quality]: gauges updated, alert rules
    # judged; 0 = never (no gauges, no quality alerts).
    check_interval_s: float = 60.0
    # The driftline_quality* gauges cover the rows captured in the last this many seconds.
    gauge_window_s: float = 3600.0

    def __post_init__(self) -> None:
        if not self.check_interval_s >= 0 or not self.gauge_window_s > 0:
            raise ValueError("quality.check_interval_s must be >= 0 and quality.gauge_window_s > 0")


class ExperimentSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The experiments watcher: stops experiments past their ``ends_at`` and, with ``guardrail_stop``, those whose
    guardrail is significantly worse."""

    # Seconds between passes over the running experiments (one report each per pass); 0 = never.
    check_interval_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.check_interval_s >= 0:
            raise ValueError(f"experiments.check_interval_s must be >= 0, got {self.check_interval_s}")


class ApiKeySetting(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A key from the config file: its name, role and sha256 (``driftline keys hash KEY``); never the key itself."""

    name: str
    role: str
    sha256: str

    def __post_init__(self) -> None:
        from driftline.security.keys import check_role, check_sha256

        check_role(self.role)
        check_sha256(self.sha256)


class AuthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """API keys and where they are required (the admin API always needs one)."""

    keys: list[ApiKeySetting] = msgspec.field(default_factory=list)
    # Inference needs a key of role predictor or above.
    require_for_inference: bool = False
    # Listen on a non-loopback address with no API key at all (anyone reaching the port may unload models).
    allow_unauthenticated: bool = False


class RegistrySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Registry sync: where new versions and aliases come from."""

    # A directory or fsspec URL laid out like the repository, or mlflow+http(s)://host:port; None = no sync.
    source: str | None = None
    poll_interval_s: float = 10.0
    # Longest wait between retries while the source is unreachable (the wait doubles from poll_interval_s).
    max_backoff_s: float = 300.0
    # The content-addressed download cache (relative paths are taken from the working directory).
    cache_dir: str = "artifact-cache"
    # Take alias moves from the source (an alias moved here stays until the source moves it again).
    sync_aliases: bool = True
    # Only these registered models (empty: every model the source has).
    models: list[str] = msgspec.field(default_factory=list)
    # A version the sync placed and the source no longer lists is unloaded and moved to <model>/.deleted/, unless
    # an alias, route or pin holds it or it is the model's last version (a sync never takes a model offline).
    mirror_deletions: bool = True

    def __post_init__(self) -> None:
        if self.poll_interval_s <= 0 or self.max_backoff_s < self.poll_interval_s:
            raise ValueError("registry.poll_interval_s must be > 0 and registry.max_backoff_s >= it")


class SloSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[slo]``: every model's SLOs unless its own ``[slo]`` says otherwise (docs/slo.md): availability (share of
    answers not a 5xx), latency (share answered within the threshold), over the period; ``enabled = false`` turns
    the SLO accounting and metrics off."""

    enabled: bool = True
    availability: float = 0.999
    latency_threshold_ms: float = 50.0
    latency_objective: float = 0.99
    period_days: float = 28.0  # 0.25 (the slowest alert's 6 h window) .. 30 (the history's retention)

    def __post_init__(self) -> None:
        for key in ("availability", "latency_objective"):
            if not 0 < getattr(self, key) < 1:
                raise ValueError(f"slo.{key} must be within (0, 1), got {getattr(self, key)!r}")
        if not 0 < self.latency_threshold_ms < float("inf"):
            raise ValueError(f"slo.latency_threshold_ms must be > 0, got {self.latency_threshold_ms!r}")
        if not 0.25 <= self.period_days <= 30:
            raise ValueError(f"slo.period_days must be within 0.25..30, got {self.period_days!r}")


class CaptureSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Prediction capture: the server-wide default; a model's ``[capture]`` in config.toml overrides it field by
    field (``directory``, ``queue_rows``, ``segment_rows`` and ``segment_seconds`` are server-wide only)."""

    enabled: bool = False
    # Share of requests captured, decided per request id (every replica captures the same requests).
    sample_rate: float = 1.0
    # Input and output names kept (None: all of them).
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    # Input names never stored, whatever `inputs` says (personal data).
    exclude: list[str] = msgspec.field(default_factory=list)
    # Whole segments older than this, or beyond this many bytes (oldest first), are deleted; None: no limit.
    max_age_s: float | None = 30 * 86_400.0
    max_bytes: int | None = 10 * 1024**3
    # Where segments are written (relative paths are taken from the working directory).
    directory: str = "captures"
    # Rows submitted and not yet written, at most (past it rows are dropped and counted, never waited for).
    queue_rows: int = 100_000
    # A segment is written at this many rows of one model version and day, or when its oldest row is this old.
    segment_rows: int = 50_000
    segment_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:  # also refuses NaN
            raise ValueError(f"capture.sample_rate must be within 0..1, got {self.sample_rate}")
        if self.max_age_s is not None and not self.max_age_s > 0:
            raise ValueError(f"capture.max_age_s must be > 0, got {self.max_age_s}")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError(f"capture.max_bytes must be >= 1, got {self.max_bytes}")
        if self.queue_rows < 1:
            raise ValueError(f"capture.queue_rows must be >= 1, got {self.queue_rows}")
        if not 1 <= self.segment_rows <= self.queue_rows:
            raise ValueError(
                f"capture.segment_rows must be within 1..capture.queue_rows ({self.queue_rows}), "
                f"got {self.segment_rows}"
            )
        if not self.segment_seconds > 0:
            raise ValueError(f"capture.segment_seconds must be > 0, got {self.segment_seconds}")
        both = sorted(set(self.inputs or ()) & set(self.exclude))
        if both:
            raise ValueError(f"capture.inputs names {both}, which capture.exclude never stores")


class FeedbackSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Ground-truth labels posted to ``/v1/models/{m}/feedback`` (and KPI events to ``/v1/models/{m}/kpi``)."""

    # Labels (or KPI events) one request may carry (the body limit, http.max_request_bytes, applies as well); the
    # CLI's upload sends batches of at most this many.
    max_items: int = 10_000

    def __post_init__(self) -> None:
        if self.max_items < 1:
            raise ValueError(f"feedback.max_items must be >= 1, got {self.max_items}")


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the server reads at start; nothing reads the environment after this is built."""

    repository: str = "demo-models"
    database: str = "driftline.db"
    # Build the bundled demo models when the default repository (demo-models) does not exist yet; a missing
    # repository named otherwise is refused at start (unless a registry source fills it).
    create_demo: bool = True
    log_level: str = "info"
    logs: LogSettings = LogSettings()
    http: HttpSettings = HttpSettings()
    jobs: JobSettings = JobSettings()
    drift: DriftSettings = DriftSettings()
    auth: AuthSettings = AuthSettings()
    registry: RegistrySettings = RegistrySettings()
    capture: CaptureSettings = CaptureSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    quality: QualitySettings = QualitySettings()
    alerts: AlertSettings = AlertSettings()
    experiments: ExperimentSettings = ExperimentSettings()
    slo: SloSettings = SloSettings()  # every model's SLO defaults (docs/slo.md); a model's [slo] overrides them
    # The alias a request without a version meets (a model without it answers with its newest loaded version).
    default_alias: str = "champion"
    # Seconds between checks of the store for changes another worker process made (aliases, routing, keys).
    refresh_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.http.port < 65536:
            raise ValueError(f"http.port must be in 1..65535, got {self.http.port}")
        if self.http.workers < 1:
            raise ValueError(f"http.workers must be >= 1, got {self.http.workers}")
        if self.http.server not in {"uvicorn", "granian"}:
            raise ValueError(f"http.server must be 'uvicorn' or 'granian', got {self.http.server!r}")
        if self.http.max_request_bytes < 1024:
            raise ValueError("http.max_request_bytes must be at least 1024")
        for key in ("keep_alive_s", "header_timeout_s", "body_timeout_s"):
            if not getattr(self.http, key) > 0:
                raise ValueError(f"http.{key} must be > 0, got {getattr(self.http, key)}")
        if not self.http.drain_delay_s >= 0:
            raise ValueError(f"http.drain_delay_s must be >= 0, got {self.http.drain_delay_s}")
        if self.http.drain_delay_s > 0 and self.http.server != "uvicorn":
            raise ValueError("http.drain_delay_s needs http.server = 'uvicorn' (granian handles the signals itself)")
        if self.http.max_connections < 1:
            raise ValueError(f"http.max_connections must be >= 1, got {self.http.max_connections}")
        if self.http.public_url:
            _check_urls("http.public_url", [self.http.public_url])
        if self.log_level.lower() not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")

    def webhooks(self) -> list[str]:
        """Every alert webhook: ``[alerts]``'s, then ``[drift]``'s, each once."""
        return list(dict.fromkeys([*self.alerts.webhooks, *self.drift.webhooks]))


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``DRIFTLINE_SECTION__KEY=value`` variables into a nested dict of raw strings."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerSettings:
    """Build the settings once, validating every key.

    Args:
        config_file: a TOML file; defaults to ``$DRIFTLINE_CONFIG`` when set.
        overrides: values that win over everything else (CLI flags), nested like the TOML.
        environ: the environment to read (``os.environ`` by default).

    Returns:
        The frozen settings.

    Raises:
        ConfigError: naming the file (or variable) and the key that is wrong.
    """
    env = os.environ if environ is None else environ
    source = "defaults"
    data: dict[str, Any] = {}
    path = config_file or env.get("DRIFTLINE_CONFIG")
    if path:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    env_tree = _env_overrides(env)
    if env_tree:
        source = f"{source} + DRIFTLINE_* environment"
    data = _merge(_merge(data, env_tree), overrides or {})
    try:
        # strict=False lets "8001" from the environment become an int.
        return msgspec.convert(data, ServerSettings, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
