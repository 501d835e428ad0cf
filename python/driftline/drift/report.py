"""DriftReport: the per-feature and dataset verdicts of one comparison, as msgspec Structs."""

from __future__ import annotations

import msgspec

from driftline.drift.html import render
from driftline.drift.policy import Verdict  # noqa: TC001 - msgspec resolves it at run time

__all__ = ["DriftReport", "FeatureDrift", "Histogram"]


class Histogram(msgspec.Struct, frozen=True):
    """Reference and current counts on the reference's bins (numeric) or categories (categorical).

    Attributes:
        labels: One label per bin or category; categories the reference never saw come last.
        reference: Reference counts per label.
        current: Current counts per label.
        edges: Numeric features: the bins' inner edges (len(labels) - 1 of them); None for categories.
    """

    labels: list[str]
    reference: list[int]
    current: list[int]
    edges: list[float] | None = None


class FeatureDrift(msgspec.Struct, frozen=True):
    """The verdict on one feature.

    Attributes:
        name: Feature name.
        kind: "numeric" or "categorical".
        stat: Statistic that judged it.
        value: The statistic (NaN when a side is empty).
        pvalue: Its p-value, None for distances.
        threshold: Drift when value >= threshold (distances) or pvalue < threshold (tests).
        verdict: "drift", "ok" or "insufficient_data".
        n_ref: Non-missing reference values.
        n_cur: Non-missing current values.
        nan_ref: Missing reference values.
        nan_cur: Missing current values.
        sampled: The current side of ks/wasserstein/cramervonmises/anderson came from a reservoir sample.
        histogram: Counts for charts, when computed.
    """

    name: str
    kind: str
    stat: str
    value: float
    pvalue: float | None
    threshold: float
    verdict: Verdict
    n_ref: int
    n_cur: int
    nan_ref: int
    nan_cur: int
    sampled: bool = False
    histogram: Histogram | None = None


class DriftReport(msgspec.Struct, frozen=True):
    """Dataset and per-feature drift verdicts.

    Attributes:
        features: One entry per feature, in profile order.
        verdict: Dataset verdict: "drift" when the drifted share >= drift_share.
        drift_share: The configured share.
        drifted_share: The share of features that drifted.
        n_drifted: Number of drifted features.
        preset: The policy preset.
        binning: "quantile" or "evidently".
        n_ref_rows: Rows in the reference.
        n_cur_rows: Rows in the current data.
        model: Model name, when known.
        version: Model version, when known.
        created: UNIX time the report was made.
    """

    features: list[FeatureDrift]
    verdict: Verdict
    drift_share: float
    drifted_share: float
    n_drifted: int
    preset: str
    binning: str
    n_ref_rows: int
    n_cur_rows: int
    model: str | None = None
    version: str | None = None
    created: float = 0.0

    @property
    def drift(self) -> bool:
        """Whether the dataset drifted."""
        return self.verdict == "drift"

    def feature(self, name: str) -> FeatureDrift:
        """One feature's entry.

        Args:
            name: Feature name.

        Returns:
            Its FeatureDrift.

        Raises:
            KeyError: No such feature.
        """
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, object]:
        """The report as builtins (NaN and inf become None, as in JSON).

        Returns:
            A JSON-compatible dict.
        """
        result: dict[str, object] = msgspec.json.decode(self.to_json())
        return result

    def to_json(self) -> bytes:
        """Encode as JSON; non-finite floats become null.

        Returns:
            UTF-8 JSON bytes.
        """
        return msgspec.json.encode(self)

    def to_html(self, title: str | None = None) -> str:
        """Render a self-contained HTML page (table plus an inline SVG chart per feature).

        Args:
            title: Page title (default names the model and version).

        Returns:
            The HTML document.
        """
        return render(self, title)
