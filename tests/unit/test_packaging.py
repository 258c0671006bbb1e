"""The wheel a user installs, built from the sources as pip builds it: Leveret claims one
import name, `leveret`, and nothing else (an application's own `jobs` or `workers` must win)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Building takes a few seconds; the first build on a machine fetches the build backend.
BUILD_TIMEOUT = 110.0


def build_wheel(source: Path, out: Path) -> Path:
    """Build the wheel of the project at `source` into `out`, as `pip install` would (an
    isolated build with the backend the project asks for); return its path."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the build reads, copied: setuptools writes build/ and *.egg-info beside the
    sources, and a stale build/lib in the working tree could hide a missing package."""
    copy = tmp_path_factory.mktemp("source")
    shutil.copytree(
        ROOT / "leveret", copy / "leveret", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    with zipfile.ZipFile(build_wheel(source, tmp_path_factory.mktemp("wheel"))) as archive:
        yield archive


def dist_info_file(archive: zipfile.ZipFile, name: str) -> str:
    [path] = [path for path in archive.namelist() if path.endswith(f".dist-info/{name}")]
    return archive.read(path).decode()


@pytest.mark.slow
def test_the_wheel_holds_one_import_name_leveret(wheel: zipfile.ZipFile) -> None:
    tops = {path.split("/")[0] for path in wheel.namelist()}
    importable = {
        top.removesuffix(".py") for top in tops if not top.endswith((".dist-info", ".data"))
    }
    assert importable == {"leveret"}
    assert dist_info_file(wheel, "top_level.txt").split() == ["leveret"]


@pytest.mark.slow
def test_every_module_is_in_the_wheel(wheel: zipfile.ZipFile, source: Path) -> None:
    # A package directory the build does not recognise would be left out silently.
    modules = {path.relative_to(source).as_posix() for path in (source / "leveret").rglob("*.py")}
    assert modules - set(wheel.namelist()) == set()


@pytest.mark.slow
def test_the_wheel_installs_the_leveret_command(wheel: zipfile.ZipFile) -> None:
    scripts = dist_info_file(wheel, "entry_points.txt")
    assert "[console_scripts]" in scripts
    assert "leveret = leveret.cli:main" in scripts
