"""The config files we ship (and the platform examples ops copy) load without a problem."""

from __future__ import annotations

import shutil
from pathlib import Path

from connectors.ozon.settings import OzonAccountSettings
from connectors.wildberries.settings import WildberriesAccountSettings
from connectors.yandex_market.settings import YandexMarketAccountSettings
from sync.config import load_config

CONFIG = Path(__file__).resolve().parents[2] / "config"
TOKENS = {"LOYALSYNC_WB_MAIN_TOKEN": "wb", "LOYALSYNC_OZON_MAIN_TOKEN": "oz", "LOYALSYNC_YM_MAIN_TOKEN": "ym"}


def test_every_example_platform_file_loads_next_to_the_shipped_ones(tmp_path: Path):
    shutil.copy(CONFIG / "loyalsync.toml", tmp_path)
    (tmp_path / "marketplaces").mkdir()
    for toml in [*CONFIG.glob("marketplaces/*.toml"), *CONFIG.glob("marketplaces/examples/*.toml")]:
        shutil.copy(toml, tmp_path / "marketplaces")
    config = load_config(tmp_path / "loyalsync.toml", env=TOKENS)
    kinds = {a.marketplace: type(a.settings) for a in config.accounts}
    assert kinds == {"wildberries": WildberriesAccountSettings, "ozon": OzonAccountSettings,
                     "yandex_market": YandexMarketAccountSettings}
    ozon = next(a.settings for a in config.accounts if a.marketplace == "ozon")
    assert ozon.client_id == "123456" and ozon.token.get_secret_value() == "oz"


def test_examples_are_not_loaded_from_their_own_folder():
    config = load_config(CONFIG / "loyalsync.toml", env={"LOYALSYNC_WB_MAIN_TOKEN": "wb"})
    assert [a.marketplace for a in config.accounts] == ["wildberries"]
