"""Each distribution builds a wheel, and each vertical imports and registers in an environment
that holds only the core and that vertical (plus their third-party dependencies).

The environment is a fresh venv whose third-party packages come from this checkout's ``.venv``
through a path file pointing at a directory of links to them, every stillroom distribution (and
its editable-install hook) left out; the wheels are then installed into it by pip, offline, which
checks that what each declares is there. Nothing is downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .test_declared_imports import DISTRIBUTIONS, ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    sources = [str(path) for path in DISTRIBUTIONS.values()]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), *sources],
        check=True,
        cwd=ROOT,
    )
    built = {name: next(out.glob(f"{name.replace('-', '_')}-*.whl")) for name in DISTRIBUTIONS}
    return built


def _environment(root: Path, third_party: Path, wheels: list[Path]) -> Path:
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([str(python), "-c", where], capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "third_party.pth").write_text(f"{third_party}\n")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation", *map(str, wheels)]
    subprocess.run(pip, check=True, cwd=root)
    return python


def test_every_distribution_builds_a_wheel(wheels: dict[str, Path]) -> None:
    assert set(wheels) == set(DISTRIBUTIONS) and all(w.stat().st_size > 0 for w in wheels.values())


@pytest.mark.parametrize("vertical", ["stillroom-fraud", "stillroom-medical", "stillroom-molecules"])
def test_a_vertical_works_beside_the_core_alone(
    vertical: str, wheels: dict[str, Path], third_party: Path, tmp_path: Path
) -> None:
    python = _environment(tmp_path / "env", third_party, [wheels["stillroom"], wheels[vertical]])
    task = vertical.removeprefix("stillroom-")
    found = subprocess.run(
        [str(python), "-m", "stillroom", "plugins", "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert found.returncode == 0, found.stderr[-2000:]
    inventory = json.loads(found.stdout)
    assert inventory["tasks"] == [task]
    verticals = [(p["distribution"], p["error"]) for p in inventory["plugins"] if p["distribution"] != "stillroom"]
    assert verticals == [(vertical, None)]
    module = vertical.replace("-", "_")
    imported = subprocess.run(
        [str(python), "-c", f"import {module}, stillroom; print({module}.__file__, stillroom.__version__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert imported.returncode == 0 and str(tmp_path / "env") in imported.stdout, imported.stderr[-2000:]
