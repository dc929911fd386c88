"""Reading a training recipe: TOML files, their `base` chain and `key=value` overrides.

A recipe has three tables, [data], [model] and [train], plus an optional top-level `name` (the
file's name without `.toml` when it has none) and `base`, a recipe file whose tables it extends.
Unknown keys fail loudly with the list of known ones, so a typo never trains the wrong model;
the values themselves are checked by the dataclasses of `pix2color.train.config`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from pix2color.errors import ConfigError
from pix2color.train.config import Config, DataConfig, ModelConfig, TrainConfig

_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _check_type(where: str, cls: type, key: str, value: Any) -> Any:
    expected = {f.name: f.type for f in dataclasses.fields(cls)}[key]
    default = getattr(cls(), key)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
    return value


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Build a Config from nested dicts, refusing unknown sections and keys."""
    unknown = set(raw) - {"name", *_SECTIONS}
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level keys {sorted(unknown)}; known: name, data, model, train"
        )
    parts: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        values = raw.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(values) - known
        if bad:
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(bad)} in [{section}]; known: {sorted(known)}"
            )
        checked = {k: _check_type(f"{source}: {section}.{k}", cls, k, v) for k, v in values.items()}
        parts[section] = checked
    name = raw.get("name", "run")
    if not isinstance(name, str):
        raise ConfigError(f"{source}: name must be a string, got {name!r}")
    try:
        return Config(name=name, **{s: _SECTIONS[s](**v) for s, v in parts.items()})
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def parse_override(text: str) -> tuple[str, str, Any]:
    """'train.epochs=5' -> ('train', 'epochs', 5); values are read as TOML, else as strings."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. train.epochs=5")
    key, value = text.split("=", 1)
    if key.count(".") != 1:
        raise ConfigError(f"override {text!r}: the key must be section.key, e.g. train.epochs")
    section, name = key.strip().split(".")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # bare words such as plateau or cuda
    return section, name, parsed


def read_recipe(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file as nested dicts, its `base` chain merged in.

    `base = "base.toml"` names another recipe, relative to this file's folder. Its tables go under
    this file's, key by key (this file's keys win); its `name` is not passed on. A base may have
    a base of its own.
    """
    path = Path(path)
    if not path.is_file():
        if _seen:
            raise ConfigError(
                f"{_seen[-1]}: its base {path} does not exist "
                "(a base is named relative to the recipe's own folder)"
            )
        raise ConfigError(f"{path}: no such config file; the recipes are in configs/*.toml")
    if path.resolve() in {p.resolve() for p in _seen}:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"{path}: recipes that are each other's base: {chain}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f'{path}: base must be a file name, e.g. base = "base.toml"')
    merged = read_recipe(path.parent / base, (*_seen, path))
    merged.pop("name", None)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Read a TOML recipe (or start from the defaults) and apply `section.key=value` overrides.

    A recipe without a `name` is named after its file (configs/mine.toml: "mine").
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        raw = read_recipe(path)
        raw.setdefault("name", Path(path).stem)
        source = str(path)
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for text in overrides:
        section, name, value = parse_override(text)
        if section not in _SECTIONS:
            raise ConfigError(
                f"override {text!r}: unknown section {section!r}; use data, model, train"
            )
        raw.setdefault(section, {})[name] = value
    return from_dict(raw, source)
