"""Code version: a hash of the engine's own source and data files, so a release names exactly
the code that produced it even outside a git checkout."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "schemas", "pipelines")


@lru_cache(maxsize=1)
def code_version() -> str:
    h = hashlib.sha256()
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*")):
            if p.is_file() and p.suffix in {".py", ".yaml", ".json", ".txt"} and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(ROOT)).encode())
                h.update(p.read_bytes())
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("sam3i-engine")
    except PackageNotFoundError:
        v = "0"
    return f"{v}+{h.hexdigest()[:12]}"
