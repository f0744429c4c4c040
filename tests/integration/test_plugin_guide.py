"""README.md, "Writing a plugin": its example plugin runs for real, as the README says.

- the README's code blocks are the files in ``examples/plugins/``, verbatim;
- the example loads, checks its options and decides (no server);
- twistd with the example configuration, a SIPp caller and a SIPp callee: a
  matching number reaches the callee with the header, any other gets the 403;
- the plugin loads by entry point from a distribution whose metadata setuptools
  built from the README's ``pyproject.toml`` lines, and ``--list-plugins`` shows where each comes from.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from b2bua.config import ConfigError, load_config
from b2bua.plugin import Plugins, load_plugins
from b2bua.routing import HeaderChanges, Reject, Routes
from tests.conftest import free_port
from tests.integration.harness import TWISTD, running_server
from tests.unit.plugins.helpers import context, invite

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "plugins"
PLUGIN = EXAMPLES / "called_number.py"
CONFIG = EXAMPLES / "called_number.toml"
BUSY_UAC = Path(__file__).resolve().parent / "scenarios" / "calls" / "busy_uac.xml"

CALLER, SERVER, CALLEE = "127.0.0.2", "127.0.0.1", "127.0.0.3"


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def guide() -> str:
    text = readme()
    start = text.index("\n## Writing a plugin\n")
    return text[start : text.index("\n## ", start + 1)]


# -- the README shows the files -------------------------------------------------------


def test_the_guide_comes_after_how_calls_are_bridged() -> None:
    headings = re.findall(r"^## (.+)$", readme(), re.M)
    assert headings[headings.index("How calls are bridged") + 1] == "Writing a plugin"


@pytest.mark.parametrize(("path", "lang"), [(PLUGIN, "python"), (CONFIG, "toml")])
def test_the_readme_code_is_the_example_file(path: Path, lang: str) -> None:
    block = f"```{lang}\n{path.read_text(encoding='utf-8')}```"
    assert block in guide(), f"README.md's {lang} block differs from {path.relative_to(ROOT)}"


# -- the example without a server -----------------------------------------------------


def example_plugins(text: str, tmp_path: Path) -> Plugins:
    """The example configuration ``text`` (its plugin_dirs made absolute), loaded."""
    path = tmp_path / "called_number.toml"
    path.write_text(text.replace('plugin_dirs = ["."]', f'plugin_dirs = ["{EXAMPLES}"]'))
    return load_plugins(load_config(str(path)))


def decide(uri: str) -> object:
    plugins = load_plugins(load_config(str(CONFIG)))
    results: list[object] = []
    plugins.route(invite(uri), context()).addCallback(results.append)
    [decision] = results
    return decision


@pytest.mark.parametrize("number", ["4930123456", "+4930123456"])
def test_a_matching_number_goes_to_the_target_with_the_header(number: str) -> None:
    decision = decide(f"sip:{number}@127.0.0.1")
    assert isinstance(decision, Routes)
    [target] = decision.targets
    assert str(target.uri) == f"sip:{number}@127.0.0.1:5070"
    assert target.headers == HeaderChanges(set=(("X-Route", "national"),))


@pytest.mark.parametrize("uri", ["sip:1001@127.0.0.1", "sip:49@127.0.0.1", "sip:127.0.0.1"])
def test_any_other_number_gets_the_plugins_reject(uri: str) -> None:
    assert decide(uri) == Reject(403, "Number Not Allowed")


def test_without_reject_other_numbers_are_left_to_the_next_router(tmp_path: Path) -> None:
    text = (
        CONFIG.read_text().replace("reject = 403", "").replace('reason = "Number Not Allowed"', "")
    )
    text += '\n[[plugin]]\nmodule = "static_routes"\n[[plugin.route]]\ntargets = ["sip:pbx"]\n'
    plugins = example_plugins(text, tmp_path)
    results: list[object] = []
    plugins.route(invite("sip:1001@127.0.0.1"), context()).addCallback(results.append)
    [decision] = results
    assert isinstance(decision, Routes) and str(decision.targets[0].uri) == "sip:1001@pbx"


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (r"'\+?49\d{6,14}'", "'(49'", ":12: plugin[0].pattern: not a regular expression:"),
        ('reject = 403', 'reject = 403\ncolour = "red"', ":16: plugin[0].colour: unknown key"),
        ('"X-Route"', '"Via"', ":14: plugin[0].headers: must be a table of X- headers"),
        ('["sip:127.0.0.1:5070"]', '["tel:+4930"]', ":13: plugin[0].targets[0]: 'tel:+4930' is not"),
        ("reject = 403", "reject = 200", ":15: plugin[0].reject: must be a final error status"),
    ],
)  # fmt: skip
def test_mistakes_name_the_file_line_and_key(
    tmp_path: Path, old: str, new: str, error: str
) -> None:
    text = CONFIG.read_text()
    assert text.count(old) == 1
    with pytest.raises(ConfigError) as info:
        example_plugins(text.replace(old, new), tmp_path)
    assert f"{tmp_path / 'called_number.toml'}{error}" in str(info.value)


def test_the_readme_quotes_the_pattern_error_as_the_example_gives_it() -> None:
    assert "`called_number.toml:12: plugin[0].pattern: not a regular expression:" in " ".join(
        guide().split()
    )


# -- for real: twistd + SIPp ------------------------------------------------------------


def sipp_run(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def messages(cwd: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in cwd.glob("*_messages.log"))


@pytest.fixture
def callee(sipp: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port, cwd = free_port("udp"), tmp_path / "uas"
    cwd.mkdir()
    proc = subprocess.Popen(
        [sipp, "-cp", str(free_port("udp")), "-sn", "uas", "-i", CALLEE, "-p", str(port), "-nostdin", "-timeout", "120s",
         "-trace_msg"],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield port, cwd
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_example_routes_real_calls(sipp: str, tmp_path: Path, callee: tuple[int, Path]) -> None:
    callee_port, callee_dir = callee
    port = free_port("udp")
    text = CONFIG.read_text()
    for old, new in [
        ('plugin_dirs = ["."]', f'plugin_dirs = ["{EXAMPLES}"]'),
        ("port = 5060", f"port = {port}"),
        ('"sip:127.0.0.1:5070"', f'"sip:{CALLEE}:{callee_port}"'),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    with running_server(tmp_path, text, ready_udp=port) as server:
        uac = [sipp, "-cp", str(free_port("udp")), f"{SERVER}:{port}", "-i", CALLER, "-p", str(free_port("udp")), "-m", "1",
               "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err", "-trace_msg"]  # fmt: skip
        matching = sipp_run([uac[0], "-sn", "uac", "-s", "4930123456", "-d", "100", *uac[1:]],
                            tmp_path / "uac")  # fmt: skip
        assert matching.returncode == 0, matching.stdout[-3000:] + server.log[-3000:]
        received = messages(callee_dir)
        assert f"INVITE sip:4930123456@{CALLEE}:{callee_port} SIP/2.0" in received, received
        assert re.search(r"^X-Route: national\r?$", received, re.M), received

        refused_scenario = tmp_path / "refused_uac.xml"
        refused_scenario.write_text(BUSY_UAC.read_text().replace("486", "403"))
        refused = sipp_run([uac[0], "-sf", str(refused_scenario), "-s", "1001", *uac[1:]],
                           tmp_path / "uac_refused")  # fmt: skip
        assert refused.returncode == 0, refused.stdout[-3000:] + server.log[-3000:]
        assert "SIP/2.0 403 Number Not Allowed" in messages(tmp_path / "uac_refused")
        assert messages(callee_dir).count("INVITE sip:") == 1  # the 403 never reached it
        assert server.stop() == 0
        assert "Traceback" not in server.log, server.log


# -- from an installed package (entry point), and --list-plugins ----------------------


def twistd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TWISTD, "-n", "--pidfile=", "b2bua", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip


def test_list_plugins_shows_the_example_from_plugin_dirs() -> None:
    result = twistd("--config", str(CONFIG), "--list-plugins")
    assert result.returncode == 0, result.stderr
    [line] = [x for x in result.stdout.splitlines() if x.startswith("called_number ")]
    assert f"plugin_dirs ({EXAMPLES})" in line and " IRouter " in line
    assert line.endswith(PLUGIN.read_text().split('"""')[1].splitlines()[0])
    assert re.search(
        r"^static_routes +bundled \(b2bua_plugins.static_routes\)", result.stdout, re.M
    )


def test_the_example_installed_as_a_package_loads_by_its_entry_point(tmp_path: Path) -> None:
    # A distribution declared exactly as the README says.
    snippet = re.search(r"```toml\n( *# pyproject\.toml[^`]*?) *```", guide())
    assert snippet is not None, "the README's pyproject.toml snippet"
    entry_points = textwrap.dedent(snippet.group(1))
    project = tmp_path / "acme-b2bua"
    (project / "acme_b2bua").mkdir(parents=True)
    (project / "acme_b2bua" / "__init__.py").write_text("")
    (project / "acme_b2bua" / "called_number.py").write_text(PLUGIN.read_text())
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "acme-b2bua"\nversion = "1.0"\n\n'
        '[tool.setuptools]\npackages = ["acme_b2bua"]\n\n' + entry_points
    )
    # What `pip install` leaves behind: the package, and the metadata setuptools
    # writes from pyproject.toml (egg_info: needs neither the network nor `wheel`).
    site = tmp_path / "site"
    shutil.copytree(project / "acme_b2bua", site / "acme_b2bua")
    built = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "--quiet",
         "egg_info", "--egg-base", str(site)],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    assert "called_number = acme_b2bua.called_number" in "".join(
        p.read_text() for p in site.glob("*.egg-info/entry_points.txt")
    )

    config = tmp_path / "b2bua.toml"
    text = CONFIG.read_text()
    config.write_text(re.sub(r"^plugin_dirs = .*\n", "", text, flags=re.M))
    env = dict(os.environ, PYTHONPATH=str(site))
    check = twistd("--config", str(config), "--check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = twistd("--config", str(config), "--list-plugins", env=env)
    [line] = [x for x in listed.stdout.splitlines() if x.startswith("called_number ")]
    assert "entry point (acme-b2bua 1.0: acme_b2bua.called_number)" in line
    assert " IRouter " in line
    # and without the distribution, the name is unknown
    missing = twistd("--config", str(config), "--check")
    assert missing.returncode != 0
    assert "no plugin named 'called_number'" in missing.stdout + missing.stderr


def test_the_example_passes_the_projects_linters() -> None:
    """``make test`` lints b2bua/, plugins/ and tests/; the example is held to the same."""
    bin_dir = Path(sys.executable).parent
    for cmd in (["ruff", "check", str(EXAMPLES)], ["mypy", "--strict", str(PLUGIN)]):
        result = subprocess.run(
            [str(bin_dir / cmd[0]), *cmd[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
