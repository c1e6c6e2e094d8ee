"""Generator registry: entry points (group ``mrsbench.generators``), loaded lazily, plus plugins
given as importable modules or .py files. Built-in names (entry points of the mrsbench
distribution) cannot be shadowed; a broken plugin fails only when requested, with its import error.

A plugin module registers generators with :func:`register` (or the decorator form) or by defining
``MRSBENCH_GENERATORS = {"name": Class}``.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

from mrsbench.core.errors import MRSBenchError

GROUP = "mrsbench.generators"
_PLUGINS: dict[str, object] = {}     # name -> class (from --plugins / register)
_BROKEN: dict[str, str] = {}          # plugin source -> error message
_EMPTY: dict[str, str] = {}           # plugin source -> why it registered nothing
_NAMES: list[str] = []                # names in the order register() was called (a plugin must add one)
_LOADED: dict[str, tuple] = {}        # plugin source -> the version imported (file mtime and size)
_SOURCE: dict[str, str] = {}          # name -> the plugin (module name or resolved .py path) that registered it


class RegistryError(MRSBenchError):
    pass


def _entry_points() -> dict:
    eps = {}
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        builtin = dist is not None and dist.metadata["Name"] == "mrsbench"
        if ep.name in eps and eps[ep.name][1]:
            continue  # never shadow a built-in
        eps[ep.name] = (ep, builtin)
    return eps


def builtin_names() -> set[str]:
    return {n for n, (_, b) in _entry_points().items() if b}


def register(name: str, cls=None):
    """Register a generator class under ``name`` (usable as a decorator)."""
    def deco(c):
        if name in builtin_names():
            raise RegistryError(f"generator name {name!r} is built in and cannot be shadowed by a plugin")
        _PLUGINS[name] = c
        _NAMES.append(name)
        return c
    return deco(cls) if cls is not None else deco


def _plugin_key(spec) -> tuple[str, str, tuple]:
    """(record key, source, version) of a plugin spec: a .py file's resolved path with its mtime and size (an
    edited file is imported again), else the module name."""
    if str(spec).endswith(".py") or Path(spec).is_file():
        p = Path(spec).resolve()
        st = p.stat() if p.is_file() else None
        return str(spec), str(p), (st.st_mtime_ns, st.st_size) if st else ()
    return str(spec), str(spec), ()


def load_plugins(specs) -> None:
    """Import plugins (module names or paths to .py files), each once per version (a run's checks, the harness
    and a sweep's cells all ask). Import errors, and plugins that register no generator, are recorded, not raised
    (:func:`check_plugins` raises them)."""
    for spec in specs or []:
        key, src, version = _plugin_key(spec)
        if _LOADED.get(src) == version and key not in _BROKEN:
            continue
        before = len(_NAMES)
        _BROKEN.pop(key, None)
        _EMPTY.pop(key, None)
        try:
            if str(spec).endswith(".py") or Path(spec).is_file():
                p = Path(src)
                if not p.is_file():
                    raise FileNotFoundError(f"no such file: {spec}")
                mod_name = f"mrsbench_plugin_{p.stem}"
                s = importlib.util.spec_from_file_location(mod_name, p)
                mod = importlib.util.module_from_spec(s)
                sys.modules[mod_name] = mod
                s.loader.exec_module(mod)
            else:
                mod = importlib.import_module(spec)
        except RegistryError:
            raise
        except Exception as e:  # a broken plugin must not break the others
            _BROKEN[key] = f"{type(e).__name__}: {e}"
            continue
        _LOADED[src] = version
        for name, cls in getattr(mod, "MRSBENCH_GENERATORS", {}).items():
            register(name, cls)
        for name in _NAMES[before:]:
            _SOURCE[name] = src
        if len(_NAMES) == before:
            from mrsbench.generators.contract import Generator
            defined = sorted(n for n, c in vars(mod).items() if isinstance(c, type) and issubclass(c, Generator)
                             and c is not Generator and c.__module__ == mod.__name__)
            hint = (f"it defines {', '.join(defined)} but registers none of them: add "
                    f"MRSBENCH_GENERATORS = {{\"name\": {defined[0]}}} or call mrsbench.generators.registry.register(\"name\", "
                    f"{defined[0]})") if defined else "it defines no Generator subclass"
            _EMPTY[key] = f"registers no generator ({hint})"


def check_plugins(specs) -> list[str]:
    """Import plugins and raise a one-line RegistryError naming the first that failed to import or registered no
    generator. Returns the names the plugins registered."""
    before = set(_PLUGINS)
    load_plugins(specs)
    for spec in specs or []:
        key = str(spec)
        if key in _BROKEN:
            raise RegistryError(f"{spec}: plugin failed to import: {_BROKEN[key]}")
        if key in _EMPTY:
            raise RegistryError(f"{spec}: {_EMPTY[key]}")
    return sorted(set(_PLUGINS) - before) or sorted(_PLUGINS)


def plugin_source(name: str) -> str | None:
    """The plugin (module name or absolute .py path) that registered ``name``; None for entry points."""
    return _SOURCE.get(name) if name in _PLUGINS and name not in _entry_points() else None


def available() -> list[str]:
    return sorted(set(_entry_points()) | set(_PLUGINS))


def get(name: str):
    """The generator class registered as ``name`` (imports it now)."""
    eps = _entry_points()
    if name in eps:
        ep, _ = eps[name]
        try:
            return ep.load()
        except Exception as e:
            raise RegistryError(f"generator {name!r} ({ep.value}) failed to import: {type(e).__name__}: {e}") from None
    if name in _PLUGINS:
        return _PLUGINS[name]
    broken = "; ".join(f"{k}: {v}" for k, v in _BROKEN.items())
    empty = "; ".join(f"{k}: {v}" for k, v in _EMPTY.items())
    raise RegistryError(f"unknown generator {name!r}; available: {', '.join(available()) or 'none'}"
                        + (f" (plugins that failed to import: {broken})" if broken else "")
                        + (f" (plugins that registered nothing: {empty})" if empty else ""))


def list_generators(plugins=None) -> list[tuple[str, str]]:
    """(name, one-line description) for every generator; broken ones say so."""
    load_plugins(plugins)
    out = []
    for name in available():
        try:
            cls = get(name)
            desc = getattr(cls, "description", "") or (cls.__doc__ or "").strip().splitlines()[0]
        except RegistryError as e:
            desc = f"(broken) {e}"
        out.append((name, desc))
    for spec, err in _BROKEN.items():
        out.append((f"<{spec}>", f"(broken plugin) {err}"))
    for spec, err in _EMPTY.items():
        out.append((f"<{spec}>", f"(plugin) {err}"))
    return out
