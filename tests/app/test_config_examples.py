"""The config files we ship (and the platform examples ops copy) load without a problem."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from app.config import load_config
from connectors.base import CursorKind
from connectors.ozon import OzonConnector
from connectors.ozon.settings import OzonAccountSettings
from connectors.registry import available_connectors
from connectors.wildberries import WildberriesConnector
from connectors.wildberries.settings import WildberriesAccountSettings
from connectors.yandex_market import YandexMarketConnector
from connectors.yandex_market.settings import YandexMarketAccountSettings

CONFIG = Path(__file__).resolve().parents[2] / "config"
REGISTRY = {"wildberries": WildberriesConnector, "ozon": OzonConnector, "yandex_market": YandexMarketConnector}
TOKENS = {"LOYALSYNC_WB_MAIN_TOKEN": "wb", "LOYALSYNC_OZON_MAIN_TOKEN": "oz", "LOYALSYNC_YM_MAIN_TOKEN": "ym"}


def test_every_example_platform_file_loads_next_to_the_shipped_ones(tmp_path: Path):
    shutil.copy(CONFIG / "loyalsync.toml", tmp_path)
    (tmp_path / "marketplaces").mkdir()
    for toml in [*CONFIG.glob("marketplaces/*.toml"), *CONFIG.glob("marketplaces/examples/*.toml")]:
        shutil.copy(toml, tmp_path / "marketplaces")
    files = [*CONFIG.glob("marketplaces/*.toml"), *CONFIG.glob("marketplaces/examples/*.toml")]
    env = {**{f"LOYALSYNC_{f.stem.upper()}_MAIN_TOKEN": f.stem for f in files},
           **{f"LOYALSYNC_{f.stem.upper()}_MAIN_SECRET": f.stem for f in files}, **TOKENS}  # OAuth (Avito)
    config = load_config(tmp_path / "loyalsync.toml", env=env)
    kinds = {a.marketplace: type(a.settings) for a in config.accounts}
    # Every platform with a file (a connector `new-connector` added too) loads with its own settings.
    assert kinds == {f.stem: available_connectors()[f.stem].settings_model for f in files}
    assert {"wildberries": WildberriesAccountSettings, "ozon": OzonAccountSettings,
            "yandex_market": YandexMarketAccountSettings}.items() <= kinds.items()
    ozon = next(a.settings for a in config.accounts if a.marketplace == "ozon")
    assert ozon.client_id == "123456" and ozon.token.get_secret_value() == "oz"


def test_examples_are_not_loaded_from_their_own_folder():
    config = load_config(CONFIG / "loyalsync.toml", env={"LOYALSYNC_WB_MAIN_TOKEN": "wb"})
    assert [a.marketplace for a in config.accounts] == ["wildberries"]


def _uncommented(text: str) -> str:
    """The file with every commented example key and table switched on."""
    example = re.compile(r"^# ?(\[accounts\.[A-Za-z0-9_.]+\]|[a-z_]+ = .+)$")
    return "\n".join(m.group(1) if (m := example.match(line)) else line for line in text.splitlines())


PLATFORM_FILES = {"wildberries": CONFIG / "marketplaces" / "wildberries.toml",
                  "ozon": CONFIG / "marketplaces" / "examples" / "ozon.toml",
                  "yandex_market": CONFIG / "marketplaces" / "examples" / "yandex_market.toml"}


@pytest.mark.parametrize("platform", sorted(PLATFORM_FILES))
def test_each_platform_file_shows_every_stream_setting_with_the_connectors_default(tmp_path: Path, platform: str):
    """What a user needs to point an account elsewhere or reach further back is in the file, and
    what it shows is true: switched on, the examples load and equal the connector's defaults."""
    text = PLATFORM_FILES[platform].read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"#:schema ../schema/{platform}.schema.json"
    shutil.copy(CONFIG / "loyalsync.toml", tmp_path)
    (tmp_path / "marketplaces").mkdir()
    (tmp_path / "marketplaces" / f"{platform}.toml").write_text(_uncommented(text), encoding="utf-8")
    (account,) = load_config(tmp_path / "loyalsync.toml", env=TOKENS).accounts
    connector = REGISTRY[platform]
    assert account.settings.base_urls == connector.settings_model.model_fields["base_urls"].default_factory()
    assert set(account.settings.streams) == set(connector.streams)
    for name, spec in connector.streams.items():
        shown = account.settings.streams[name]
        for key in ("poll_interval", "lookback", "lag", "window", "start_history", "rescan_lookback", "rescan_every"):
            if key == "window" and spec.cursor is CursorKind.HIGH_WATER:
                continue  # one open span per run: a window size means nothing there
            assert getattr(shown, key) == getattr(spec, key), f"{platform}: streams.{name}.{key}"
