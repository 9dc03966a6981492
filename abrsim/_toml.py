"""Typed reading of parsed TOML documents (sweep specs, scenarios) with one-line errors.

Every error names the file and the dotted key, says what was found and what was expected.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abrsim.errors import AbrsimError, InputError, UnknownNameError, nesting_limit

if TYPE_CHECKING:
    from abrsim.model import PlayerModel

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["NAME_PATTERN", "TomlReader", "name_problem", "unusable_path"]

#: Names of sets, groups, tiers and specs: letters, digits and ``_ . + -``.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_KINDS = {str: "a string", int: "an integer", float: "a number", list: "an array", dict: "a table",
          bool: "true or false"}


def name_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a name of :data:`NAME_PATTERN`'s form (a path separator, a leading
    dot, a space...), or None if nothing is."""
    if NAME_PATTERN.fullmatch(value):
        return None
    return f"got {value!r}; expected letters, digits and _ . + - (starting with a letter or digit)"


def unusable_path(path: Path) -> str | None:
    """Why ``path`` cannot name a file (a NUL character, a name longer than file systems allow), or None.

    ``Path.exists`` and ``is_file`` raise on these instead of answering False.
    """
    if "\x00" in str(path):
        return "a NUL character"
    if len(os.fsencode(path)) > 4095 or any(len(os.fsencode(part)) > 255 for part in path.parts):
        return "a name longer than file systems allow (255 bytes a name, 4095 a path)"
    return None


class TomlReader:
    """Typed access to a parsed TOML document.

    Args:
        source: the file (for messages).
        top_keys: the document's top-level keys, to hint when one was written after a table.
    """

    def __init__(self, source: Path | str, top_keys: Sequence[str] = ()) -> None:
        self.source = source
        self.top_keys = tuple(top_keys)

    def parse(self, text: str) -> dict[str, Any]:
        """Parse TOML text; a syntax error names the file and line."""
        try:
            with nesting_limit(self.source, "a TOML document"):
                return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"at line (\d+)", str(exc))
            raise InputError(f"invalid TOML: {exc}", source=self.source,
                             line=int(match[1]) if match else None) from None

    def error(self, message: str, key: str) -> InputError:
        """An :class:`InputError` at ``key``."""
        return InputError(message, source=self.source, field=key)

    def keys(self, table: Mapping[str, Any], allowed: Sequence[str], key: str) -> None:
        """Reject any key of ``table`` not in ``allowed``."""
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                hint = (" (in TOML, top-level keys must come before the first [table] or [[table]])"
                        if key and name in self.top_keys else "")
                raise self.error(f"unknown key; expected one of {', '.join(allowed)}{hint}", where)

    def get(self, table: Mapping[str, Any], name: str, types: tuple[type, ...], key: str,
            default: Any = None) -> Any:
        """``table[name]`` if present (checked against ``types``), else ``default``."""
        if name not in table:
            return default
        value = table[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(dict.fromkeys(_KINDS[t] for t in types))
            raise self.error(f"got {value!r}; expected {expected}", key)
        return value

    def number(self, table: Mapping[str, Any], name: str, key: str, default: float | None = None, *,
               minimum: float = 0.0, strict: bool = False, maximum: float = math.inf) -> float:
        """A finite number >= ``minimum`` (> with ``strict``) and <= ``maximum``; required when ``default``
        is None."""
        value = self.get(table, name, (int, float), key, default)
        if value is None:
            raise self.error("missing key", key)
        try:
            value = float(value)
        except OverflowError:  # tomllib reads integers of any size: 10**400 is past any float
            value = math.inf if value > 0 else -math.inf
        in_range = (value > minimum if strict else value >= minimum) and value <= maximum
        if not (math.isfinite(value) and in_range):
            relation = ">" if strict else ">="
            most = f" and <= {maximum:g}" if math.isfinite(maximum) else ""
            raise self.error(f"got {value!r}; expected a finite number {relation} {minimum:g}{most}", key)
        return value

    def integer(self, table: Mapping[str, Any], name: str, key: str, default: int, minimum: int) -> int:
        """An integer >= ``minimum``."""
        value = self.get(table, name, (int,), key, default)
        if value < minimum:
            raise self.error(f"got {value}; expected an integer >= {minimum}", key)
        return int(value)

    def name(self, table: Mapping[str, Any], key: str, default: str | None) -> str:
        """The table's ``name``: required unless ``default``, and of :data:`NAME_PATTERN`'s form."""
        value = self.get(table, "name", (str,), key, default)
        if value is None:
            raise self.error("missing key", key)
        problem = name_problem(value)
        if problem:
            raise self.error(problem, key)
        return str(value)

    def preset(self, value: Any, key: str, allowed: Sequence[str]) -> tuple[dict[str, Any], PlayerModel]:
        """A model entry (a preset name, or a table with ``preset`` and more): the table and its preset."""
        from abrsim.model import get_preset

        table = {"preset": value} if isinstance(value, str) else value
        if not isinstance(table, dict):
            raise self.error(f"got {value!r}; expected a preset name or a table", key)
        self.keys(table, allowed, key)
        name = self.get(table, "preset", (str,), f"{key}.preset", "abrsim")
        try:
            return table, get_preset(name)
        except UnknownNameError as exc:
            raise self.error(str(exc), f"{key}.preset") from None

    def model_fields(self, model: PlayerModel, changes: Mapping[str, Any], key: str,
                     where: Mapping[str, str] | None = None, **extra: Any) -> PlayerModel:
        """``model`` with fields changed, each checked alone first so that an error names it.

        Args:
            model: the preset.
            changes: field values as written (integers accepted for float fields).
            key: the key of the fields' table, for errors about fields that do not fit together.
            where: the key of each field (default ``{key}.{name}``).
            extra: further changes that need no checking (e.g. ``name``).
        """
        changes = dict(changes)
        for name, value in changes.items():
            at = (where or {}).get(name, f"{key}.{name}")
            if isinstance(getattr(model, name, None), float) and type(value) is int:
                changes[name] = value = float(value)
            try:
                model.replace(**{name: value})
            except AbrsimError as exc:
                raise self.error(exc.detail if isinstance(exc, InputError) else str(exc), at) from None
        if not changes and not extra:
            return model
        try:
            return model.replace(**changes, **extra)
        except AbrsimError as exc:  # fields that do not fit together
            raise self.error(exc.detail if isinstance(exc, InputError) else str(exc), key) from None
