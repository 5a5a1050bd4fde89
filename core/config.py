"""One error format for every configuration file: file, key, problem.

Settings are pydantic models (``extra='forbid'``, strict types); :func:`validate` turns a
``ValidationError`` into :class:`ConfigError` lines such as
``config/identity.yml: match_threshold: Input should be less than 1``. Messages name keys and
the kind of problem, never the offending value (a value may be personal data).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Settings = TypeVar("Settings", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; each problem names file and key."""

    def __init__(self, file: str | Path, problems: Iterable[tuple[str, str]]):
        self.file = str(file)
        self.problems = [(key, problem) for key, problem in problems]
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.file}: {key}: {problem}" if key else f"{self.file}: {problem}"
                for key, problem in self.problems]


def key_path(location: Iterable[int | str]) -> str:
    """``('sources', 'crm', 'identity', 'email')`` → ``sources.crm.identity.email``;
    list positions as ``segments[0].name``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def validate(model: type[Settings], data: Any, file: str | Path,
             prefix: tuple[int | str, ...] = ()) -> Settings:
    """``model`` validated from ``data`` read from ``file``; :class:`ConfigError` otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(file, [
            (key_path((*prefix, *item["loc"])), item["msg"]) for item in error.errors()
        ]) from None


def read_yaml(path: str | Path, *, required: bool = True) -> Any:
    """A YAML file's content (``None`` for an absent optional file or an empty one)."""
    path = Path(path)
    if not path.exists():
        if required:
            raise ConfigError(path, [("", "file does not exist")])
        return None
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or "syntax"
        if not isinstance(error, _DuplicateKey):
            problem = f"not valid YAML ({problem})"
        raise ConfigError(path, [("", f"{where}{problem}")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(path, [("", f"cannot be read ({type(error).__name__})")]) from None


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping names the same key twice: YAML keeps the last, silently shadowing the first."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys in every configuration file."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise _DuplicateKey(None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)
