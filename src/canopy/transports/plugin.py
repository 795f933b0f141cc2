"""Plugins: a Python module or package, given by path or by entry point, loaded as a child
zone of this process and reached only through Canopy proxies, as if it were in
another process.

A plugin exposes one entry function, ``plugin``: called with its zone and, when the
host offers one, a proxy of the host's input object (or with fewer arguments if it
takes fewer), it returns the plugin's root object. When the host's last reference
into the plugin zone is gone, the zone is torn down and every module the plugin
brought into ``sys.modules`` is removed, so that loading it again starts from
fresh module state.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import itertools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ENTRY_POINT_GROUP = "canopy.plugins"
ENTRY = "plugin"

_names = itertools.count(1)
_lock = threading.Lock()  # imports are process-wide: one plugin loads at a time


class Plugin:
    """A loaded plugin: its entry function and the modules to forget when it unloads."""

    def __init__(self, name: str, entry: Callable[..., Any], modules: list[str]) -> None:
        self.name = name
        self.entry = entry
        self.modules = modules

    def make_root(self, zone: Any, host: Any = None) -> Any:
        try:
            count = len(inspect.signature(self.entry).parameters)
        except (TypeError, ValueError):
            count = 2
        args = (zone, host)[:count]
        return self.entry(*args)

    def unload(self) -> None:
        """Forget the plugin's modules: the next load imports them afresh."""
        for module in self.modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


def load(source: str | os.PathLike[str] | None, entry_point: str | None) -> Plugin:
    """Import the plugin at ``source`` (a ``.py`` file or a package directory) or the
    ``canopy.plugins`` entry point named ``entry_point``."""
    if (source is None) == (entry_point is None):
        raise TypeError("load a plugin from a path or from an entry point: give one of them")
    with _lock:
        before = set(sys.modules)
        if entry_point is not None:
            entry, package = _from_entry_point(entry_point)
            name = entry_point
        else:
            assert source is not None  # noqa: S101 - checked above
            module = _from_path(Path(source))
            entry, package, name = _entry_of(module), module.__name__, Path(source).stem
        added = [
            m for m in set(sys.modules) - before if m == package or m.startswith(package + ".")
        ]
    return Plugin(name, entry, added)


def _from_path(path: Path) -> ModuleType:
    if path.is_dir():
        init = path / "__init__.py"
        if not init.is_file():
            raise ImportError(f"{path} is a directory without __init__.py: not a package")
        location, search = init, [str(path)]
    elif path.suffix == ".py" and path.is_file():
        location, search = path, None
    else:
        raise ImportError(f"{path}: a plugin is a .py file or a package directory")
    # A name of its own each time: two loads never share module state, and nothing
    # the host imported under the plugin's own name is touched.
    name = f"canopy_plugin_{next(_names)}_{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, location, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a plugin from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _from_entry_point(name: str) -> tuple[Callable[..., Any], str]:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
        raise LookupError(
            f"no {ENTRY_POINT_GROUP!r} entry point named {name!r}; installed: {known or 'none'}"
        )
    point = next(iter(found))
    loaded = point.load()
    entry = _entry_of(loaded) if isinstance(loaded, ModuleType) else loaded
    if not callable(entry):
        raise TypeError(f"entry point {name!r} ({point.value}) is not callable")
    return entry, point.module.partition(".")[0]


def _entry_of(module: ModuleType) -> Callable[..., Any]:
    entry = getattr(module, ENTRY, None)
    if not callable(entry):
        raise AttributeError(
            f"plugin {module.__name__} has no entry function: define "
            f"def {ENTRY}(zone, host): ... returning the plugin's root object"
        )
    return entry  # type: ignore[no-any-return]
