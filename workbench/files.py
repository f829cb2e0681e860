"""Reading a user's JSON or YAML file into a mapping, with one-line errors for bad input.

Config files (``workbench train --config``), sweep specs and circuit files all go through
here, so a missing file, a parse error or a non-mapping top level reads the same everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from workbench.errors import UserError

Format = Literal["json", "yaml", "auto"]
_SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def read_mapping_file(path: str | Path, what: str, *, fmt: Format = "auto") -> dict:
    """The mapping stored in ``path``; ``what`` names the file in errors ("config file").

    ``fmt="auto"`` picks the parser from the suffix (.json, .yaml, .yml) and rejects others.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} {str(path)!r} does not exist")
    if fmt == "auto":
        if p.suffix not in _SUFFIXES:
            raise UserError(f"{what} {str(path)!r} must end in .json, .yaml or .yml")
        fmt = _SUFFIXES[p.suffix]
    text = p.read_text()
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"malformed {what} {str(path)!r}: {exc.msg} at line {exc.lineno}"
                            ) from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"malformed {what} {str(path)!r}: {first}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {str(path)!r} must hold a mapping of keys to values")
    return data
