"""Fixtures for the plugin tests: write a configuration file, load it and its plugins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from b2bua.config import load_config
from b2bua.plugin import Plugins, load_plugins
from tests.unit.plugins.helpers import LISTEN

WriteConfig = Callable[[str], str]
LoadPlugins = Callable[[str], Plugins]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write ``tmp_path/b2bua.toml`` (LISTEN + text); return its path."""

    def write(text: str) -> str:
        path = tmp_path / "b2bua.toml"
        path.write_text(LISTEN + text, encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def load(write_config: WriteConfig) -> LoadPlugins:
    """Write a configuration (LISTEN + text) and load its plugins."""

    def load_(text: str) -> Plugins:
        return load_plugins(load_config(write_config(text)))

    return load_
