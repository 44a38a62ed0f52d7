"""`loyalsync config-schema`: the schemas editors use agree with the loader, and the shipped ones are current."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from app.cli import app
from app.config import load_config
from app.config_schema import schema_files
from connectors.errors import ConfigError
from connectors.registry import available_connectors

CONFIG = Path(__file__).resolve().parents[2] / "config"
SCHEMAS = schema_files(available_connectors())
TOKENS = {"LOYALSYNC_WB_MAIN_TOKEN": "wb", "LOYALSYNC_OZON_MAIN_TOKEN": "oz", "LOYALSYNC_YM_MAIN_TOKEN": "ym"}


def validator(name: str) -> Draft202012Validator:
    schema = SCHEMAS[f"{name}.schema.json"]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(name: str, text: str) -> list[str]:
    """Every message, including those under an anyOf (e.g. a duration that may also be unset)."""
    found = list(validator(name).iter_errors(tomllib.loads(text)))
    return [e.message for top in found for e in (top, *top.context)]


def test_the_schemas_in_the_repository_are_the_ones_the_code_generates():
    for name, schema in SCHEMAS.items():
        committed = CONFIG / "schema" / name
        assert committed.exists(), f"{committed} is missing: run ./dev config-schema -o config/schema"
        assert json.loads(committed.read_text(encoding="utf-8")) == schema, (
            f"{committed} is out of date: run ./dev config-schema -o config/schema")


@pytest.mark.parametrize("path", [CONFIG / "loyalsync.toml", *sorted(CONFIG.glob("marketplaces/*.toml")),
                                  *sorted(CONFIG.glob("marketplaces/examples/*.toml"))], ids=lambda p: p.name)
def test_every_shipped_config_file_is_valid_under_its_schema(path: Path):
    name = "loyalsync" if path.name == "loyalsync.toml" else path.stem
    assert errors(name, path.read_text(encoding="utf-8")) == []


GOOD_WB = '[[accounts]]\nname = "main"\ntoken_env = "LOYALSYNC_WB_MAIN_TOKEN"\n'


@pytest.mark.parametrize(("name", "text", "why"), [
    ("loyalsync", '[daemon]\nmode = "loud"\n', "'loud' is not one of"),
    ("loyalsync", "[schedule]\nmax_concurrent_jobs = 8\nsurprise = 1\n", "Additional properties"),
    ("loyalsync", '[schedule]\ndefault_poll_interval = "5 minutes"\n', "does not match"),
    ("loyalsync", '[[actions.replies.templates]]\nratings = [5]\n', "is not valid under any of the given schemas"),
    ("loyalsync", '[[actions.replies.templates]]\nratings = [5]\ntext = "a"\ntexts = ["b"]\n',
     "is valid under each of"),
    ("wildberries", GOOD_WB + 'token = "eyJhbGciOi"\n', "Additional properties"),
    ("wildberries", GOOD_WB + '[accounts.streams.order]\nenabled = false\n', "'order' is not one of"),
    ("wildberries", GOOD_WB + '[accounts.rate_limits.feedback]\nrequests = 3\n', "'feedback' is not one of"),
    ("wildberries", GOOD_WB + '[accounts.streams.orders]\nlookback = "two weeks"\n', "does not match"),
    ("wildberries", '[[accounts]]\nname = "main"\n', "'token_env' is a required property"),
    ("ozon", GOOD_WB + 'client_id = "has space"\n', "does not match"),
])
def test_the_schema_flags_what_the_loader_refuses(tmp_path: Path, name: str, text: str, why: str):
    assert any(why in e for e in errors(name, text)), errors(name, text)
    # ...and the loader refuses the same file, so an editor's warning is never a false alarm.
    (tmp_path / "marketplaces").mkdir()
    if name == "loyalsync":
        (tmp_path / "loyalsync.toml").write_text(text, encoding="utf-8")
    else:
        (tmp_path / "loyalsync.toml").write_text("", encoding="utf-8")
        (tmp_path / "marketplaces" / f"{name}.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(tmp_path / "loyalsync.toml", env=TOKENS)


def test_durations_are_accepted_in_every_form_the_loader_takes():
    for value in ('"90s"', '"5m"', '"1h30m"', '"14d"', '"PT5M"', "300"):
        assert errors("loyalsync", f"[schedule]\ndefault_poll_interval = {value}\n") == [], value


def test_the_command_prints_one_schema_or_writes_them_all(tmp_path: Path):
    runner = CliRunner()
    shown = runner.invoke(app, ["config-schema", "ozon"])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == SCHEMAS["ozon.schema.json"]
    wrote = runner.invoke(app, ["config-schema", "--output-dir", str(tmp_path / "s")])
    assert wrote.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(SCHEMAS)
    unknown = runner.invoke(app, ["config-schema", "amazon"])
    assert unknown.exit_code == 2 and "choose one of: loyalsync, " in unknown.stderr and ", ozon" in unknown.stderr


def test_the_shipped_files_point_editors_at_their_schema():
    # Taplo and "Even Better TOML" read a `#:schema` directive on the first line.
    assert (CONFIG / "loyalsync.toml").read_text(encoding="utf-8").startswith("#:schema ./schema/loyalsync.schema.json")
    for path in CONFIG.glob("marketplaces/*.toml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == f"#:schema ../schema/{path.stem}.schema.json", path
