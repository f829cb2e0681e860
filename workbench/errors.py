"""User-facing error type: bad input the user can fix (the CLI prints it on one line, exit 2)."""


class UserError(ValueError):
    """A problem with the user's input, named in the message (e.g. ``unknown task 'foo'``).

    Subclasses ``ValueError`` so library callers can catch either; the CLI catches only this
    type, so internal bugs still surface as tracebacks instead of being disguised as bad input.
    """


def check_choice(value, label: str, choices) -> str:
    """``value`` if it is one of ``choices``, else a UserError naming it and the choices."""
    if value not in choices:
        raise UserError(f"{label} must be one of {', '.join(choices)}, got {value!r}")
    return value
