"""From a TOML file and `CLEARANCE_*` variables to `Settings`, by walking the schema.

Each value comes from the first of: its variable (`CLEARANCE_<TABLE>_<KEY>`, `CLEARANCE_<KEY>`
for `[clearance]`, plus any alias the schema names), the file, the default. Anything the schema
does not know, or a value it does not allow, is a `ConfigError` with one line naming where (the
file or the variable), the key, what was expected and what was found.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

from clearance.config.schema import ORDERED, REMOVED, SECRET_NAME, SPEC, Settings, Spec
from clearance.errors import ConfigError

DEFAULT_CONFIG_NAME = "clearance.toml"
CORE = "clearance"  # the table of the keys that belong to no part: data_dir, database_url

_WRONG: Any = object()  # what a parser returns for a value of the wrong type


@dataclass(frozen=True, slots=True)
class Kind:
    """How a type is read from TOML and from a variable, and made absolute if it is a path."""

    expected: str  # "an integer": completes "expected ..."
    toml: Callable[[object], Any]  # the value, or _WRONG
    env: Callable[[str], Any] | None  # None: not settable from a variable
    env_expected: str = ""
    resolve: Callable[[Any, Path], Any] | None = None  # against the base directory


def _str(v: object) -> Any:
    return v if isinstance(v, str) else _WRONG


def _int(v: object) -> Any:
    return v if isinstance(v, int) and not isinstance(v, bool) else _WRONG


def _float(v: object) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return _WRONG
    return float(v)


def _bool(v: object) -> Any:
    return v if isinstance(v, bool) else _WRONG


def _strs(v: object) -> Any:
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return tuple(v)
    return _WRONG


def _tables(v: object) -> Any:
    if isinstance(v, list) and all(isinstance(t, dict) for t in v):
        return tuple(dict(t) for t in v)
    return _WRONG


def _env_int(text: str) -> Any:
    return int(text) if re.fullmatch(r"\s*[+-]?[0-9]+\s*", text) else _WRONG


def _env_float(text: str) -> Any:
    try:
        return _float(float(text))
    except ValueError:
        return _WRONG


def _env_bool(text: str) -> Any:
    return {"true": True, "1": True, "false": False, "0": False}.get(text.strip(), _WRONG)


def _env_list(text: str) -> Any:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _path(base: Path, value: str | Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _optional_path(value: str | Path | None, base: Path) -> Path | None:
    return _path(base, value) if value else None  # "" in the file: none


_LIST = "a comma-separated list"
KINDS: dict[object, Kind] = {
    str: Kind("a string", _str, str),
    int: Kind("an integer", _int, _env_int),
    float: Kind("a finite number", _float, _env_float),
    bool: Kind("a boolean (true or false)", _bool, _env_bool, "true, false, 1 or 0"),
    Path: Kind("a path (a string)", _str, str, resolve=lambda v, base: _path(base, v)),
    Path | None: Kind('a path (a string; "" for none)', _str, str, resolve=_optional_path),
    tuple[str, ...]: Kind("an array of strings", _strs, _env_list, _LIST),
    tuple[Path, ...]: Kind(
        "an array of paths (strings)",
        _strs,
        _env_list,
        _LIST,
        resolve=lambda v, base: tuple(_path(base, p) for p in v),
    ),
    tuple[Mapping[str, Any], ...]: Kind("an array of tables", _tables, None),
}


@dataclass(frozen=True, slots=True)
class Key:
    """One setting, as the file and the environment name it."""

    table: str
    name: str  # in the file
    attr: str  # on the settings object
    kind: Kind
    default: Any
    spec: Spec

    @property
    def dotted(self) -> str:
        return f"{self.table}.{self.name}"

    @property
    def label(self) -> str:
        return f"[{self.table}] {self.name}"

    @property
    def expected(self) -> str:
        """What a value must be: "an integer from 1 to 10"."""
        rule = self.spec.rule
        if rule is None:
            return self.kind.expected
        return self.kind.expected + ("" if rule.phrase.startswith(",") else " ") + rule.phrase

    @property
    def variables(self) -> tuple[str, ...]:
        if self.kind.env is None:
            return ()
        table = "" if self.table == CORE else self.table.upper() + "_"
        return (f"CLEARANCE_{table}{self.name.upper()}", *self.spec.env)

    def shown(self, value: Any) -> Any:
        """The value as `config show` prints it (JSON types), its secret part hidden."""
        if self.spec.mask is not None:
            return self.spec.mask(value)
        if self.kind is KINDS[str] and SECRET_NAME.search(self.name) and value:
            return "***"  # a secret-named string without a mask of its own
        return _plain(value)


@dataclass(frozen=True, slots=True)
class Effective:
    """A setting's value after loading, and where it came from."""

    key: Key
    value: Any
    source: str  # "default", "file PATH" or "env NAME"

    @property
    def shown(self) -> Any:
        return self.key.shown(self.value)


def tables() -> dict[str, type]:
    """The tables of the file, in order, each with its settings class."""
    hints = get_type_hints(Settings)
    return {f.name: hints[f.name] for f in fields(Settings) if is_dataclass(hints[f.name])}


@cache
def schema() -> tuple[Key, ...]:
    """Every setting: the [clearance] keys first (data_dir resolves paths below), then by table."""
    return (*_keys(CORE, Settings), *(k for n, c in tables().items() for k in _keys(n, c)))


def _keys(table: str, cls: type) -> Iterator[Key]:
    hints = get_type_hints(cls)
    for f in fields(cls):
        spec = f.metadata.get(SPEC)
        if isinstance(spec, Spec):
            kind = KINDS[hints[f.name]]
            yield Key(table, spec.key or f.name, f.name, kind, f.default, spec)


class Loader:
    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        base: Path,
        environ: Mapping[str, str],
        config_file: Path | None = None,
    ) -> None:
        self.raw = raw
        self.base = base
        self.environ = environ
        self.config_file = config_file
        self.file = str(config_file) if config_file is not None else "the configuration"
        self.effective: list[Effective] = []

    def load(self) -> Settings:
        self._check_names()
        self._check_variables()
        values: dict[str, dict[str, Any]] = {name: {} for name in (CORE, *tables())}
        for key in schema():
            value, source = self._value(key)
            if key.kind.resolve is not None:
                data_dir = values[CORE].get("data_dir", self.base)
                base = data_dir if key.spec.relative_to == "data_dir" else self.base
                value = key.kind.resolve(value, base)
            if key.table == CORE and key.attr == "database_url":
                value = _resolve_sqlite(value, values[CORE]["data_dir"])
            values[key.table][key.attr] = value
            self.effective.append(Effective(key, value, source))
        self._check_order()
        parts = {name: cls(**values[name]) for name, cls in tables().items()}
        return Settings(config_file=self.config_file, **values[CORE], **parts)

    def _value(self, key: Key) -> tuple[Any, str]:
        for variable in key.variables:
            text = self.environ.get(variable, "")
            if not text:  # an empty variable is an unset one
                continue
            assert key.kind.env is not None  # keys without a parser have no variables
            where = f"{variable} ({key.label})"
            value = key.kind.env(text)
            if value is _WRONG:
                expected = key.kind.env_expected or key.kind.expected
                raise ConfigError(f"{where}: expected {expected}, found {_quote(text)}")
            return self._checked(key, value, where), f"env {variable}"
        table = self.raw.get(key.table, {})
        if key.name in table:
            where = f"{self.file}: {key.label}"
            value = key.kind.toml(table[key.name])
            if value is _WRONG:
                found = _found(table[key.name])
                raise ConfigError(f"{where}: expected {key.kind.expected}, found {found}")
            return self._checked(key, value, where), f"file {self.file}"
        return key.default, "default"

    def _checked(self, key: Key, value: Any, where: str) -> Any:
        rule = key.spec.rule
        if rule is not None and not rule.test(value):
            found = _literal(key.shown(value))
            raise ConfigError(f"{where}: expected {key.expected}, found {found}")
        return value

    def _check_names(self) -> None:
        known = {CORE: set[str](), **{name: set[str]() for name in tables()}}
        for key in schema():
            known[key.table].add(key.name)
        for name, table in self.raw.items():
            if name not in known:
                owners = [t for t, keys in known.items() if name in keys]
                if owners:
                    raise ConfigError(f"{self.file}: {name}: a key of [{owners[0]}], not a table")
                hint = _suggest(name, known, "[{}]")
                raise ConfigError(f"{self.file}: [{name}]: unknown table{hint}")
            if not isinstance(table, Mapping):
                found = _found(table)
                raise ConfigError(f"{self.file}: {name}: expected a table [{name}], found {found}")
            for key in table:
                if (name, key) in REMOVED:
                    why = REMOVED[name, key]
                    raise ConfigError(f"{self.file}: [{name}] {key}: removed ({why}); delete it")
                if key not in known[name]:
                    hint = _suggest(key, known[name])
                    raise ConfigError(f"{self.file}: [{name}] {key}: unknown key{hint}")

    def _check_variables(self) -> None:
        """A variable under a table's prefix that names no key is a typo, not someone else's."""
        known = {v for key in schema() for v in key.variables}
        removed = {f"CLEARANCE_{k.upper()}": why for (t, k), why in REMOVED.items() if t == CORE}
        for variable, text in self.environ.items():
            if not text or variable in known:
                continue
            if variable in removed:
                raise ConfigError(f"{variable}: removed ({removed[variable]}); unset it")
            for table in tables():
                prefix = f"CLEARANCE_{table.upper()}_"
                if variable.startswith(prefix):
                    self._unknown_variable(variable, prefix, table)

    def _unknown_variable(self, variable: str, prefix: str, table: str) -> None:
        name = variable.removeprefix(prefix).lower()
        keys = [k for k in schema() if k.table == table]
        if any(k.name == name for k in keys):
            raise ConfigError(f"{variable}: [{table}] {name} is set in the file only")
        names = [k.name.upper() for k in keys if k.variables]
        hint = _suggest(name.upper(), names, prefix + "{}", only_close=True)
        raise ConfigError(f"{variable}: no such setting{hint}")

    def _check_order(self) -> None:
        found = {(e.key.table, e.key.name): e for e in self.effective}
        for table, low_name, high_name in ORDERED:
            low, high = found[table, low_name], found[table, high_name]
            if low.value <= high.value:
                continue
            if low.source != "default" or high.source == "default":
                where, expected = self._where(low), f"at most {high.key.label} ({high.value:g})"
                bad = low.value
            else:
                where, expected = self._where(high), f"at least {low.key.label} ({low.value:g})"
                bad = high.value
            raise ConfigError(f"{where}: expected a number {expected}, found {bad:g}")

    def _where(self, effective: Effective) -> str:
        source, label = effective.source, effective.key.label
        if source.startswith("env "):
            return f"{source.removeprefix('env ')} ({label})"
        return f"{self.file}: {label}"


def config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path:
    if explicit is not None:
        return Path(explicit)
    if environ.get("CLEARANCE_CONFIG"):
        return Path(environ["CLEARANCE_CONFIG"])
    return Path.cwd() / DEFAULT_CONFIG_NAME


def load_effective(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, tuple[Effective, ...]]:
    """The settings, and each value with its source (for `clearance config show`)."""
    env = os.environ if environ is None else environ
    file = config_path(path, env)
    if not file.is_file():
        raise ConfigError(f"no configuration file at {file}; run `clearance init DIR` first")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from exc
    loader = Loader(raw, base=file.resolve().parent, environ=env, config_file=file)
    settings = loader.load()
    return settings, tuple(loader.effective)


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file, then apply `CLEARANCE_*` overrides from `environ` (os.environ)."""
    return load_effective(path, environ)[0]


def settings_from_mapping(
    raw: Mapping[str, Any],
    *,
    base: Path,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Settings from an already parsed file; relative paths are relative to `base`."""
    env = {} if environ is None else environ
    return Loader(raw, base=base, environ=env, config_file=config_file).load()


def _resolve_sqlite(url: str, data_dir: Path) -> str:
    """`sqlite:///relative.db` is relative to the data directory, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(data_dir / url[len(prefix) :])
    return url


def _plain(value: Any) -> Any:
    """JSON types: paths as strings, tuples as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _quote(text: str) -> str:
    text = text if len(text) <= 60 else text[:57] + "..."
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _literal(value: Any) -> str:
    """A value as TOML would write it, short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        items = ", ".join(_literal(v) for v in value[:4])
        return f"[{items}{', ...' if len(value) > 4 else ''}]"
    if isinstance(value, Mapping):
        return "{...}"
    return str(value)


def _found(value: object) -> str:
    """What was found, for "expected an integer, found ..."."""
    if isinstance(value, bool):
        return f"the boolean {_literal(value)}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {_quote(value)}"
    if isinstance(value, list):
        return f"the array {_literal(value)}"
    if isinstance(value, Mapping):
        return "a table"
    return f"the {type(value).__name__} {value}"  # TOML dates and times


def _suggest(
    name: str, choices: Iterable[str], form: str = "{}", *, only_close: bool = False
) -> str:
    options = sorted(choices)
    close = difflib.get_close_matches(name, options, n=1)
    if close:
        return f" (did you mean {form.format(close[0])}?)"
    if only_close or not options:
        return ""
    return " (expected one of " + ", ".join(form.format(o) for o in options) + ")"
