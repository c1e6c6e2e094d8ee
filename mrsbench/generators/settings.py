"""A generator's settings: the ``__init__`` arguments a user may set from the command line (``--set k=v``), a
sweep file or :func:`mrsbench.evaluate`, checked against what the class declares, and the canonical model name
they give a result (``vae[strategy=interpolation]``).

Declared settings are read from ``__init__``: each argument with a default is a setting, typed by its default
(or by its annotation when the default is None); an argument whose default is a dataclass instance (the latent
generators' :class:`~mrsbench.generators.contract.LatentSampling`) contributes its fields by their own names
(``strategy``, ``scale``), or as ``arg.field`` when a name is taken. A dataclass field may list ``choices`` and
``aliases`` in its metadata. ``progress`` is the harness's, not a setting.

Identity: a setting equal to the value the harness would use anyway (the class default, or the preset's
``generator_kwargs``) is dropped, so one generator configuration has one name whichever way it was spelt."""
from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from mrsbench.core.errors import InputError

_HARNESS_ARGS = ("progress",)   # set by the harness (generator_kwargs), never part of a result's identity


@dataclass(frozen=True)
class Setting:
    """One settable argument: ``path`` is (arg,) or (arg, field) for a field of a dataclass argument;
    ``kind``: bool | int | float | str | tuple[int] | tuple[float] | tuple[str]."""

    name: str
    path: tuple[str, ...]
    kind: str
    default: Any
    optional: bool = False
    choices: tuple | None = None
    aliases: dict | None = None

    def describe(self) -> str:
        t = self.kind + (" or none" if self.optional else "")
        t += f", one of {', '.join(self.choices)}" if self.choices else ""
        return t + "".join(f" ({a} = {v})" for a, v in (self.aliases or {}).items())


def _kind(default, annotation) -> tuple[str | None, bool]:
    """(kind, optional) of an argument from its default, else from its (string) annotation."""
    if isinstance(default, bool):
        return "bool", False
    if isinstance(default, int):
        return "int", False
    if isinstance(default, float):
        return "float", False
    if isinstance(default, str):
        return "str", False
    ann = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    ann = ann or ""
    optional = default is None or bool(re.search(r"\bNone\b|Optional", ann))
    if isinstance(default, (tuple, list)) or "tuple" in ann or "list" in ann:
        elems = [type(v).__name__ for v in default] if isinstance(default, (tuple, list)) and default else []
        inner = re.search(r"(?:tuple|list)\[([^\]]*)\]", ann)
        names = elems or ([w.strip() for w in inner.group(1).split(",")] if inner else [])
        el = "float" if "float" in names else "int" if "int" in names else "str" if "str" in names else None
        return (f"tuple[{el}]" if el else None), optional
    for k in ("bool", "int", "float", "str"):
        if re.search(rf"\b{k}\b", ann):
            return k, optional
    return None, optional


def declared(cls) -> list[Setting]:
    """The settings a generator class declares (see the module docstring), in ``__init__`` order."""
    out: list[Setting] = []
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return out
    for p in params.values():
        if p.name == "self" or p.name in _HARNESS_ARGS or p.default is inspect.Parameter.empty \
                or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if dataclasses.is_dataclass(p.default) and not isinstance(p.default, type):
            for f in dataclasses.fields(p.default):
                v = getattr(p.default, f.name)
                kind, opt = _kind(v, f.type)
                if kind is not None:
                    out.append(Setting(f.name, (p.name, f.name), kind, v, opt, tuple(f.metadata.get("choices", ()))
                                       or None, dict(f.metadata.get("aliases", {})) or None))
            continue
        kind, opt = _kind(p.default, p.annotation)
        if kind is not None:
            out.append(Setting(p.name, (p.name,), kind, p.default, opt))
    top = {s.name for s in out if len(s.path) == 1}
    return [dataclasses.replace(s, name=".".join(s.path)) if len(s.path) > 1 and s.name in top else s for s in out]


def _coerce(s: Setting, value, who: str):
    """``value`` (text from the command line, or a JSON value from a results or sweep file) as the setting's type."""
    bad = lambda why: InputError(who, f"setting {s.name}={value!r}: {why}")   # noqa: E731
    if isinstance(value, str) and value.strip().lower() in ("none", "null"):
        if s.optional:
            return None
        raise bad(f"cannot be none (expected {s.describe()})")
    if value is None:
        if s.optional:
            return None
        raise bad(f"cannot be none (expected {s.describe()})")
    if s.kind.startswith("tuple"):
        el = s.kind[6:-1]
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text) if text.startswith("[") else [x for x in text.split("+") if x.strip()]
            except json.JSONDecodeError:
                raise bad("expected a list such as 1.8+4.2 or [1.8,4.2]") from None
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(Setting(s.name, s.path, el, None), v, who) for v in value)
    if s.kind == "bool":
        if isinstance(value, bool):
            return value
        t = str(value).strip().lower()
        if t in ("true", "1", "yes", "on"):
            return True
        if t in ("false", "0", "no", "off"):
            return False
        raise bad("expected true or false")
    if s.kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise bad("expected an integer")
        try:
            return int(value) if not isinstance(value, str) else int(value.strip())
        except ValueError:
            raise bad("expected an integer") from None
    if s.kind == "float":
        if isinstance(value, bool):
            raise bad("expected a number")
        try:
            v = float(value)
        except ValueError:
            raise bad("expected a number") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise bad("expected a finite number")
        return v
    v = str(value).strip()
    v = (s.aliases or {}).get(v, v)
    if s.choices and v not in s.choices:
        raise bad(f"expected one of {', '.join(s.choices)}" + (f" (or {', '.join(s.aliases)})" if s.aliases else ""))
    return v


def _lookup(cls) -> dict[str, Setting]:
    return {s.name: s for s in declared(cls)}


def _unknown(name: str, key: str, known: dict) -> InputError:
    return InputError(name, f"unknown setting {key!r}; it takes: {', '.join(known) or 'none'} "
                            f"(see `mrsbench list --model {name}`)")


def effective_defaults(cls, base_kwargs: dict) -> dict:
    """Each setting's value when the harness makes the class with ``base_kwargs`` and no settings."""
    out = {}
    for s in declared(cls):
        v = base_kwargs.get(s.path[0], s.default) if len(s.path) == 1 else None
        if len(s.path) > 1:
            outer = base_kwargs.get(s.path[0])
            v = getattr(outer, s.path[1]) if outer is not None and hasattr(outer, s.path[1]) else s.default
        out[s.name] = tuple(v) if isinstance(v, list) else v
    return out


def normalise(cls, name: str, settings: dict, base_kwargs: dict | None = None) -> dict:
    """``settings`` checked and typed against the class; those equal to the harness's value dropped. A key may be
    given as a field's own name or as ``arg.field``. Unknown or ill-typed: one line naming the generator."""
    known = _lookup(cls)
    by_path = {".".join(s.path): s for s in known.values()}
    eff = effective_defaults(cls, base_kwargs or {})
    out = {}
    for key, value in settings.items():
        s = known.get(key) or by_path.get(key)
        if s is None:
            raise _unknown(name, key, known)
        v = _coerce(s, value, name)
        if s.name in out and out[s.name] != v:
            raise InputError(name, f"setting {s.name} given twice with different values")
        out[s.name] = v
    return {k: v for k, v in sorted(out.items()) if v != eff.get(k)}


def build(cls, name: str, base_kwargs: dict, settings: dict):
    """An instance of ``cls`` made with ``base_kwargs`` and the (normalised) ``settings`` on top; an argument the
    class rejects is one line naming the generator."""
    known = _lookup(cls)
    kwargs = dict(base_kwargs)
    nested: dict[str, dict] = {}
    for key, v in settings.items():
        s = known.get(key)
        if s is None:
            raise _unknown(name, key, known)
        v = list(v) if isinstance(v, tuple) and isinstance(s.default, list) else v
        if len(s.path) == 1:
            kwargs[s.path[0]] = v
        else:
            nested.setdefault(s.path[0], {})[s.path[1]] = v
    params = inspect.signature(cls.__init__).parameters
    for arg, fields in nested.items():
        kwargs[arg] = dataclasses.replace(kwargs.get(arg, params[arg].default), **fields)
    try:
        return cls(**kwargs)
    except Exception as e:
        raise InputError(name, f"settings {format_settings(settings)} rejected: {type(e).__name__}: {e}") from None


def format_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, (tuple, list)):
        return "+".join(format_value(x) for x in v)
    return repr(v) if isinstance(v, float) else str(v)


def format_settings(settings: dict) -> str:
    return ",".join(f"{k}={format_value(v)}" for k, v in sorted(settings.items()))


def label(name: str, settings: dict | None) -> str:
    """The model name of a configuration: ``vae`` or ``vae[scale=0.25,strategy=interpolation]`` (sorted keys;
    lists written a+b; characters valid in a file name on every system)."""
    return f"{name}[{format_settings(settings)}]" if settings else name


_LABEL = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]$")


def split_label(model: str) -> tuple[str, dict]:
    """(generator name, settings as text) of a model name written by :func:`label` (or typed by a user)."""
    m = _LABEL.match(model.strip())
    if not m:
        if "[" in model or "]" in model:
            raise InputError(model, "malformed model name: expected NAME or NAME[key=value,...]")
        return model.strip(), {}
    return m.group(1).strip(), parse_pairs(m.group(2).split(","), m.group(1).strip()) if m.group(2).strip() else {}


def parse_pairs(pairs, who: str = "--set") -> dict:
    """``["k=v", ...]`` (each ``--set``) as {k: v} text."""
    out = {}
    for p in pairs:
        k, eq, v = str(p).partition("=")
        if not eq or not k.strip():
            raise InputError(who, f"setting {p!r}: expected KEY=VALUE")
        out[k.strip()] = v.strip()
    return out


def parse_grid(pairs) -> dict[str, list]:
    """Sweep ``--set`` values: ``strategy=random,interpolation`` (a comma lists the grid's values)."""
    return {k: [x.strip() for x in v.split(",") if x.strip()] or [""] for k, v in parse_pairs(pairs).items()}


def expand(grid: dict[str, list]) -> list[dict]:
    """Every combination of a grid of settings ({} -> [{}])."""
    keys = sorted(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def name_problems(model, settings) -> list[str]:
    """A results file's model name and its recorded ``generator_settings`` must say the same."""
    if settings is not None and not isinstance(settings, dict):
        return ["generator_settings is not a table"]
    try:
        base, _ = split_label(str(model))
    except InputError as e:
        return [str(e)]
    want = label(base, settings or {})
    return [] if want == model else [f"model name {model!r} does not match its generator settings (expected {want!r})"]
