"""``key=value`` settings: the one parser and the one value coercion every face uses.

``--set KEY=VALUE`` arguments (training, programs), the settings text boxes of the browser
pages (one per line, or comma-separated) and config files all end here: :func:`parse_settings`
turns them into ``{key: text}`` and :func:`coerce` turns each text into the type its config
field declares, with a :class:`~workbench.errors.UserError` naming the bad value.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable

from workbench.errors import UserError


def parse_settings(source: str | Iterable[str] | None) -> dict[str, str]:
    """``["lr=1e-3", "p=97"]`` or ``"lr=1e-3\\np=97"`` -> ``{"lr": "1e-3", "p": "97"}``.

    Text is split into lines and each line at commas; a comma piece without ``=`` belongs to
    the value before it (``tokens=a,b``). Blank items and ``#`` comments are skipped; an item
    without ``=`` or without a key is a UserError. Values stay text (see :func:`coerce`).
    """
    if source is None:
        return {}
    items = _text_items(source) if isinstance(source, str) else list(source)
    out: dict[str, str] = {}
    for item in items:
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        if "=" not in item:
            raise UserError(f"expected key=value, got {item!r}")
        key, value = (s.strip() for s in item.split("=", 1))
        if not key:
            raise UserError(f"missing setting name in {item!r}")
        out[key] = value
    return out


def split_prefixed(settings: dict, prefix: str) -> tuple[dict, dict]:
    """``(settings without the prefix, {key minus prefix: value for prefixed keys})``, e.g.
    program settings and ``task.*`` parameters."""
    plain = {k: v for k, v in settings.items() if not k.startswith(prefix)}
    prefixed = {k[len(prefix):]: v for k, v in settings.items() if k.startswith(prefix)}
    return plain, prefixed


def apply_section_overrides(sections: dict[str, dict], overrides: dict,
                            kinds: dict[str, dict[str, typing.Any]], *,
                            derived: Iterable[str] = (), derived_from: str = "") -> None:
    """Apply ``key=value`` overrides in place to the config ``sections`` (``{"model": …}``)
    whose field types are ``kinds`` (section -> field -> annotation).

    A key is a field name of exactly one section or a dotted ``section.field``; unknown or
    ambiguous keys, the ``derived`` fields of the model section (computed from
    ``derived_from``) and badly typed values raise :class:`UserError`.
    """
    for key, value in overrides.items():
        if "." in key:
            section, field = key.split(".", 1)
            if section not in kinds or field not in kinds[section]:
                raise UserError(f"unknown config key {key!r}")
        else:
            owners = [s for s, f in kinds.items() if key in f]
            if not owners:
                known = sorted(set().union(*[set(f) for f in kinds.values()]))
                raise UserError(f"unknown config key {key!r}; keys: {', '.join(known)}")
            if len(owners) > 1:
                raise UserError(f"ambiguous config key {key!r}: use "
                                + " or ".join(f"{o}.{key}" for o in owners))
            section, field = owners[0], key
        if section == "model" and field in derived:
            raise UserError(f"{field} is derived from {derived_from}; it cannot be set")
        sections[section][field] = coerce(value, kinds[section][field], key)


def _text_items(text: str) -> list[str]:
    items: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        for piece in re.split(r",", line):
            if items and "=" not in piece and piece.strip() and items[-1].strip():
                items[-1] += "," + piece
            else:
                items.append(piece)
    return items


def coerce(value, annotation, label: str):
    """Convert a user value (possibly text from a setting) to ``annotation`` or raise."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or value == "none"):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, label)
            except ValueError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"{label}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UserError(f"{label} must be one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{label} must be a list, got {value!r}")
        inner = args[0] if args else str
        return tuple(coerce(v, inner, label) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise UserError(f"{label} must be true or false, got {value!r}")
    if annotation in (int, float):
        return _number(value, annotation, label)
    if annotation is str:
        if not isinstance(value, str):
            raise UserError(f"{label} must be a string, got {value!r}")
        return value
    return value


def _number(value, annotation, label: str):
    what = "an integer" if annotation is int else "a number"
    if isinstance(value, bool):
        raise UserError(f"{label} must be {what}, got {value!r}")
    if annotation is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return annotation(value)
        except ValueError:
            pass
    raise UserError(f"{label} must be {what}, got {value!r}")
