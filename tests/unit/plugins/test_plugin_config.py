"""b2bua.config: [[plugin]] tables, plugin_dirs, and the line of every key inside a plugin table."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.config import ConfigError, PluginConfig, parse_config
from tests.unit.plugins.helpers import LISTEN


def test_no_plugins_by_default() -> None:
    config = parse_config(LISTEN, "f.toml")
    assert config.plugins == () and config.plugin_dirs == ()


def test_plugin_tables_in_order_with_their_options() -> None:
    text = LISTEN + (
        "\n"
        "[[plugin]]\n"  # 6
        'module = "static_routes"\n'
        "\n"
        "[[plugin.route]]\n"  # 9
        'user_prefix = "1"\n'
        'targets = ["sip:a"]\n'
        "\n"
        "[[plugin]]\n"  # 13
        'module = "acme.routing"\n'
        "weight = 3\n"
        "[plugin.limits]\n"  # 16
        "calls = 10\n"
    )
    config = parse_config(text, "f.toml")
    first, second = config.plugins
    assert first == PluginConfig(
        "static_routes", {"route": [{"user_prefix": "1", "targets": ["sip:a"]}]}, "plugin[0]", 6
    )
    assert second == PluginConfig(
        "acme.routing", {"weight": 3, "limits": {"calls": 10}}, "plugin[1]", 13
    )
    assert first.line_of("plugin[0].route[0].targets") == 11
    assert first.line_of("plugin[0].route[0]") == 9
    assert first.line_of("plugin[0].route[0].domain") == 9  # absent: its table's line
    assert first.line_of("plugin[0].colour") == 6
    assert second.line_of("plugin[1].weight") == 15
    assert second.line_of("plugin[1].limits.calls") == 17
    assert second.line_of("plugin[1].limits") == 16
    # Each plugin knows only its own keys.
    assert all(k.startswith("plugin[1]") for k in second.lines)


def test_lines_of_arrays_of_tables_and_inline_tables() -> None:
    text = LISTEN + (
        "[[plugin]]\n"  # 5
        'module = "x"  # comment with [brackets] and = signs\n'
        "[[plugin.route]]\n"  # 7
        "targets = [\n"  # 8
        '  "sip:a",  # ] not the end\n'
        '  "sip:b",\n'
        "]\n"
        "timeout = 3\n"  # 12
        "[[plugin.route]]\n"  # 13
        "[[plugin.route.rule]]\n"  # 14
        "x = 1\n"  # 15
        "[[plugin.route.rule]]\n"  # 16
        "x = 2\n"  # 17
        "[[plugin]]\n"  # 18
        'module = "y"\n'
        "route = [\n"  # 20
        '  { user_prefix = "1", targets = ["sip:a"] },\n'  # 21
        '  { "source" = "10.0.0.0/8", targets = ["sip:b"] },\n'  # 22
        "]\n"
        "tail = { a = 1 }\n"  # 24
    )
    one, two = parse_config(text, "f.toml").plugins
    assert one.line_of("plugin[0].module") == 6
    assert one.line_of("plugin[0].route[0].timeout") == 12
    assert one.line_of("plugin[0].route[0].targets[1]") == 8
    assert one.line_of("plugin[0].route[1]") == 13
    assert one.line_of("plugin[0].route[1].rule[0].x") == 15
    assert one.line_of("plugin[0].route[1].rule[1].x") == 17
    assert two.line == 18
    assert two.line_of("plugin[1].route") == 20
    assert two.line_of("plugin[1].route[0].user_prefix") == 21
    assert two.line_of("plugin[1].route[1].targets") == 22
    assert two.line_of("plugin[1].route[1]") == 22
    assert two.line_of("plugin[1].tail.a") == 24


def test_other_tables_end_a_plugin_table() -> None:
    text = LISTEN + '[[plugin]]\nmodule = "x"\n[server]\nuser_agent = "u"\n'
    [plugin] = parse_config(text, "f.toml").plugins
    assert "plugin[0].user_agent" not in plugin.lines


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[plugin]]\nweight = 1\n", "f.toml:5: plugin[0]: missing required key 'module'"),
        ("[[plugin]]\nmodule = 1\n", "f.toml:6: plugin[0].module: must be a module name"),
        ('[[plugin]]\nmodule = ""\n', "f.toml:6: plugin[0].module: must be a module name"),
        ('[[plugin]]\nmodule = "a-b"\n', "f.toml:6: plugin[0].module: must be a module name"),
        ('[[plugin]]\nmodule = "a..b"\n', "plugin[0].module: must be a module name"),
        ('[[plugin]]\nmodule = ".a"\n', "plugin[0].module: must be a module name"),
        ('[[plugin]]\nmodule = "a.b."\n', "plugin[0].module: must be a module name"),
        ('[plugin]\nmodule = "x"\n', "f.toml:5: plugin: must be an array of tables ([[plugin]])"),
    ],
)
def test_plugin_table_errors(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(LISTEN + text, "f.toml")
    assert expected in str(info.value)


def test_dotted_module_names_are_accepted() -> None:
    [plugin] = parse_config(LISTEN + '[[plugin]]\nmodule = "acme.b2bua.routing_2"\n').plugins
    assert plugin.module == "acme.b2bua.routing_2" and plugin.options == {}


def test_plugin_dirs_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "abs").mkdir()
    path = tmp_path / "b2bua.toml"
    text = f'plugin_dirs = ["mine", "{tmp_path / "abs"}", "mine/../abs"]\n' + LISTEN
    config = parse_config(text, str(path))
    assert config.plugin_dirs == (
        str(tmp_path / "mine"),
        str(tmp_path / "abs"),
        str(tmp_path / "abs"),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"plugins"', "f.toml:1: plugin_dirs: must be a list, not 'plugins'"),
        ("[1]", "f.toml:1: plugin_dirs[0]: must be a directory name"),
        ('[""]', "f.toml:1: plugin_dirs[0]: must be a directory name"),
        ('[".", "nowhere"]', "f.toml:1: plugin_dirs[1]: directory "),
    ],
)
def test_plugin_dirs_errors(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"plugin_dirs = {value}\n" + LISTEN, "f.toml")
    assert str(info.value).startswith(expected)
    if expected.endswith("directory "):
        assert str(info.value).endswith("does not exist")
