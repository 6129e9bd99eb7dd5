"""Locate and read Doorstep's configuration folder (``config/``).

The folder ships with the project next to ``solver/``; ``DOORSTEP_CONFIG_DIR``
points elsewhere. Settings are TOML, read with the standard library.
"""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def config_dir() -> Path:
    """The configuration folder in force."""
    override = os.environ.get("DOORSTEP_CONFIG_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "config"


@functools.cache
def _read(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def defaults() -> dict[str, Any]:
    """The parsed ``config/defaults.toml``."""
    return _read(str(config_dir() / "defaults.toml"))


def default_skill_catalogue() -> list[str]:
    return list(defaults().get("skills", {}).get("catalogue", []))


def bundled_map_path() -> Path:
    """The map in force: ``DOORSTEP_MAP`` (set by ``doorstep --map``) when set,
    else ``[map] path`` of the configuration (relative to ``config/``; the demo
    city shipped there by default)."""
    override = os.environ.get("DOORSTEP_MAP")
    if override:
        return Path(override)
    path: str = defaults()["map"]["path"]
    return config_dir() / path


def load_settings(model: type[M], filename: str, path: str | Path | None = None) -> M:
    """A settings file read into ``model``: ``path``, or ``filename`` in the
    configuration folder; ``model()`` (its built-in defaults) when that default
    file does not exist. A bad file raises ValueError naming the file and the key."""
    if path is None:
        path = config_dir() / filename
        if not Path(path).exists():
            return model()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None
