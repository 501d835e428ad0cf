"""driftline.stats needs nothing but numpy and scipy, and both are runtime dependencies of the package (a server
installed without the dev extra must still compute a report)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import driftline.stats

ROOT = Path(__file__).resolve().parents[2]
IMPORTED = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.M)


def test_stats_imports_only_numpy_scipy_and_driftline():
    tops = {
        name
        for path in Path(driftline.stats.__file__).parent.glob("*.py")
        for name in IMPORTED.findall(path.read_text())
    }
    third_party = tops - set(sys.stdlib_module_names) - {"__future__", "driftline"}
    assert third_party == {"numpy", "scipy"}


def test_numpy_and_scipy_are_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert {"numpy", "scipy"} <= names
