"""engine/ knows nothing of Prefect or Ray; pipelines/ knows Ray, not Prefect (DESIGN.md section 7)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> dict[str, set[str]]:
    out = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


@pytest.mark.parametrize("package,forbidden", [
    ("engine", {"prefect", "ray", "flows", "pipelines"}),
    ("schemas", {"prefect", "ray", "flows", "pipelines", "engine"}),
    ("pipelines", {"prefect", "flows"}),
])
def test_layers_do_not_import_upwards(package, forbidden):
    bad = {f: sorted(names & forbidden) for f, names in imported_modules(package).items() if names & forbidden}
    assert not bad, f"{package}/ imports what it must not: {bad}"


def test_the_scan_sees_imports():
    # guard against a scan that finds nothing: flows/ does import prefect
    assert any("prefect" in names for names in imported_modules("flows").values())
