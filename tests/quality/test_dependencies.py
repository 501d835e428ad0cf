"""The quality package runs on numpy and msgspec alone: scikit-learn and friends are test references only."""

import ast
import sys
from pathlib import Path

import driftline.quality

ALLOWED = {"numpy", "msgspec", "driftline.errors", "driftline.quality"}


def test_quality_imports_only_numpy_msgspec_errors_and_itself():
    root = Path(driftline.quality.__file__).parent
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                assert any(name == a or name.startswith(f"{a}.") for a in ALLOWED), f"{path.name} imports {name}"
