"""The deployment files name what the repository holds (no Docker engine runs here to build
the image, so its inputs are checked instead)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_path_the_dockerfile_copies_exists() -> None:
    copied = [
        line.split()[1:-1]
        for line in (ROOT / "compose" / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    ]
    sources = [source for sources in copied for source in sources]
    assert "leveret" in sources  # the one package is in the image
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert missing == [], f"the Dockerfile copies paths the repository does not have: {missing}"
