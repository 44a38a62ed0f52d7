"""`loyalsync new-connector`: the generated package passes the conformance kit as written, and
the command refuses names and places it cannot use, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import app
from app.new_connector import ScaffoldError, plan, write

LOYALSYNC = Path(sys.executable).parent / "loyalsync"


@pytest.mark.slow
def test_a_package_of_its_own_passes_the_kit_before_a_line_is_changed(tmp_path: Path) -> None:
    new = plan("acme_shop", tmp_path)
    assert new.module == "loyalsync_acme_shop" and not new.in_checkout
    written = {p.relative_to(tmp_path).as_posix() for p in write(new)}
    package = "loyalsync_acme_shop"
    assert {f"{package}/connector.py", f"{package}/emulator.py", f"{package}/schemas/error.json",
            "tests/test_conformance.py", "tests/conftest.py", "pyproject.toml", "acme_shop.toml.example"} <= written
    assert 'acme_shop = "loyalsync_acme_shop:AcmeShopConnector"' in (tmp_path / "pyproject.toml").read_text()
    # The generated package, and the loyalsync these tests run (the installed one, or this checkout).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(app.__file__).parents[1])])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "-x",
                          "--rootdir", str(tmp_path), "tests"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-500:]


def test_in_a_checkout_the_package_goes_under_connectors_and_is_registered(tmp_path: Path) -> None:
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "__init__.py").write_text("")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "loyalsync"\n\n'
                                             '[project.entry-points."loyalsync.connectors"]\n'
                                             'ozon = "connectors.ozon:OzonConnector"\n\n[tool.x]\ny = 1\n')
    new = plan("acme", tmp_path)
    write(new)
    assert new.module == "connectors.acme"
    assert (tmp_path / "connectors" / "acme" / "connector.py").exists()
    assert (tmp_path / "tests" / "connectors" / "acme" / "test_conformance.py").exists()
    example = (tmp_path / "config" / "marketplaces" / "examples" / "acme.toml").read_text()
    assert example.startswith("#:schema ../schema/acme.schema.json\n")
    assert 'token_env = "LOYALSYNC_ACME_MAIN_TOKEN"' in example
    assert (tmp_path / "pyproject.toml").read_text() == (
        '[project]\nname = "loyalsync"\n\n[project.entry-points."loyalsync.connectors"]\n'
        'ozon = "connectors.ozon:OzonConnector"\nacme = "connectors.acme:AcmeConnector"\n\n[tool.x]\ny = 1\n')


@pytest.mark.parametrize(("name", "why"), [
    ("Kaspi", "is not a connector name"), ("1shop", "is not a connector name"), ("class", "is not a connector name"),
    ("ozon", "is already installed"),
])
def test_a_name_it_cannot_use_is_refused_in_one_line(tmp_path: Path, name: str, why: str) -> None:
    run = subprocess.run([str(LOYALSYNC), "new-connector", name, "--into", str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and why in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_package_or_a_missing_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loyalsync_acme").mkdir()
    with pytest.raises(ScaffoldError, match="already exists"):
        plan("acme", tmp_path)
    with pytest.raises(ScaffoldError, match="is not a folder"):
        plan("acme", tmp_path / "nowhere")
