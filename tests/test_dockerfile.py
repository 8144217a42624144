"""The image holds every package pyproject installs (a package missing from COPY builds fine and fails at run time)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_copies_every_installed_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\S+) \./\1/?$", (ROOT / "Dockerfile").read_text(), flags=re.M))
    assert packages <= copied, f"Dockerfile does not COPY {sorted(packages - copied)}"
    modules = {m + ".py" for m in config["tool"]["setuptools"].get("py-modules", [])}
    first_copy = re.search(r"^COPY ((?:\S+ )+)\./$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    assert first_copy and modules <= set(first_copy.group(1).split()), "Dockerfile misses a top-level module"


def test_the_image_starts_no_embedded_server():
    assert re.search(r"^ENV QUANTPIPE_EMBEDDED=false$", (ROOT / "Dockerfile").read_text(), flags=re.M)
