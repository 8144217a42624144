"""The layers of docs/architecture.md, checked on the source: who may import whom.

apps (cli, api, shadowwatch) -> tasks -> pool logic (workers/<pool>) -> shared_models -> servers.
A lower layer never imports a higher one, a pool never imports another pool, and no
runtime package imports the test scaffolding. (Imports are read with ``ast``, so a
lazy import inside a function counts as well.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from workers.routing import POOL_PACKAGES

ROOT = Path(__file__).resolve().parent.parent
APPS = {"cli", "api", "shadowwatch"}

# (package, what it must not import)
RULES = [
    ("shared_models", APPS | {"workers", "loaders", "quant_shared", "tests", "benchmarks"}),
    ("quant_shared", APPS | {"workers", "loaders", "tests", "benchmarks"}),  # shared_models under seed 002's name
    ("loaders", APPS | {"workers", "tests", "benchmarks"}),
    ("workers", APPS | {"loaders", "tests", "benchmarks"}),
    ("cli", {"tests", "benchmarks"}),
    ("api", {"cli", "tests", "benchmarks"}),
    ("shadowwatch", {"cli", "api", "tests", "benchmarks"}),
]
# deprecated aliases kept for one release by the ingest move (issue #10 item 1)
ALLOWED = {("shared_models/__init__.py", "shadowwatch"), ("shared_models/shadow_watch.py", "shadowwatch")}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def _modules(package: str):
    return sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []


@pytest.mark.parametrize("package,forbidden", RULES, ids=[r[0] for r in RULES])
def test_lower_layers_do_not_import_higher_ones(package, forbidden):
    bad = []
    for path in _modules(package):
        rel = path.relative_to(ROOT).as_posix()
        for name in imports(path):
            top = name.split(".")[0]
            if top in forbidden and (rel, top) not in ALLOWED:
                bad.append(f"{rel} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("pool", sorted(POOL_PACKAGES))
def test_a_pool_imports_no_other_pool(pool):
    package = POOL_PACKAGES[pool]
    others = [p for p in POOL_PACKAGES.values() if p != package]
    bad = [f"{path.relative_to(ROOT)} imports {name}" for path in _modules(package.replace(".", "/"))
           for name in imports(path) if any(name == o or name.startswith(o + ".") for o in others)]
    assert not bad, "\n".join(bad)
