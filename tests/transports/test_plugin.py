"""Plugins: a module or package loaded as a child zone, reached only through proxies,
unloaded with the last reference into it, and loaded again from fresh module state."""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

import pytest

import canopy
from behaviour import Widget, b
from canopy.runtime import close

PLUGINS = Path(__file__).resolve().parent / "plugins"


def plugin_modules() -> list[str]:
    return [m for m in sys.modules if m.startswith("canopy_plugin_")]


def test_a_plugin_is_a_zone_reached_through_proxies() -> None:
    with canopy.Zone("host") as host:
        remote = host.load_plugin(PLUGINS / "counter.py", b.i_test, host=Widget("the host"))
        assert isinstance(remote, canopy.runtime.Proxy)  # not the plugin's object itself
        assert remote.add(0, 0) == 1001 and remote.add(0, 0) == 2001
        assert remote.widget_name(None) == "the host"  # the host's object, as a proxy there
        assert remote.widget_name(Widget("w")) == "w"
        assert len(plugin_modules()) == 1
        close(remote)
        host.collect()
        assert plugin_modules() == []  # unloaded with the last reference
        assert host.exported() == {} and host.imported() == [] and host.links == {}


def test_loading_again_starts_from_fresh_module_state() -> None:
    with canopy.Zone("host") as host:
        for _ in range(3):
            remote = host.load_plugin(PLUGINS / "counter.py", b.i_test)
            assert remote.add(0, 0) == 1001  # first call of the first load, every time
            del remote
            gc.collect()
            host.collect()
            assert plugin_modules() == []


def test_a_package_plugin_and_its_submodules_unload() -> None:
    with canopy.Zone("host") as host:
        remote = host.load_plugin(PLUGINS / "counter_pkg", b.i_test)
        assert remote.add(2, 3) == 5
        loaded = plugin_modules()
        assert len(loaded) == 2 and any(m.endswith(".service") for m in loaded)
        close(remote)
        host.collect()
        assert plugin_modules() == []


def test_an_asyncio_host() -> None:
    async def scenario() -> None:
        async with canopy.AsyncZone("host") as host:
            remote = await host.load_plugin(
                PLUGINS / "counter.py", b.i_test_async, host=Widget("async host")
            )
            assert await remote.add(0, 0) == 1001
            assert await remote.widget_name(None) == "async host"
            close(remote)
            host.collect()
            for _ in range(20):
                await asyncio.sleep(0)
            assert plugin_modules() == []

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ("missing.py", ImportError, "a plugin is a .py file or a package directory"),
        ("", ImportError, "without __init__.py"),
    ],
)
def test_what_is_not_a_plugin(
    tmp_path: Path, source: str, error: type[Exception], message: str
) -> None:
    with canopy.Zone("host") as host, pytest.raises(error, match=message):
        host.load_plugin(tmp_path / source, b.i_test)
    assert plugin_modules() == []


def test_a_module_without_an_entry_function(tmp_path: Path) -> None:
    (tmp_path / "nothing.py").write_text("x = 1\n")
    with (
        canopy.Zone("host") as host,
        pytest.raises(AttributeError, match=r"def plugin\(zone, host\)"),
    ):
        host.load_plugin(tmp_path / "nothing.py", b.i_test)


def test_an_unknown_entry_point() -> None:
    with (
        canopy.Zone("host") as host,
        pytest.raises(LookupError, match=r"no 'canopy\.plugins' entry point named 'nope'"),
    ):
        host.load_plugin(None, b.i_test, entry_point="nope")


def test_an_installed_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A distribution as pip installs one: a module, and metadata naming its entry point.
    (tmp_path / "counter_dist.py").write_text((PLUGINS / "counter.py").read_text())
    info = tmp_path / "counter_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: counter-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[canopy.plugins]\ncounter = counter_dist:plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with canopy.Zone("host") as host:
        remote = host.load_plugin(None, b.i_test, entry_point="counter")
        assert remote.add(0, 0) == 1001
        close(remote)
        host.collect()
        assert "counter_dist" not in sys.modules
        again = host.load_plugin(None, b.i_test, entry_point="counter")
        assert again.add(0, 0) == 1001  # fresh module state
        close(again)
        host.collect()
