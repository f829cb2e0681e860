"""Task registry: name -> task class, construction from user parameters with validation."""

from __future__ import annotations

import dataclasses
import typing

from training.tasks.base import Task
from workbench.errors import UserError
from workbench.settings import coerce

_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator adding a task under its ``name``."""
    assert cls.name and cls.name not in _REGISTRY, cls.name
    _REGISTRY[cls.name] = cls
    return cls


def task_names() -> list[str]:
    return sorted(_REGISTRY)


def get_task_class(name: str) -> type[Task]:
    if name not in _REGISTRY:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return _REGISTRY[name]


__all__ = ["coerce", "get_task_class", "make_task", "register", "task_names"]


def make_task(name: str, **params) -> Task:
    """Build a task from user parameters; unknown keys and wrong types raise ``UserError``."""
    cls = get_task_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    clean = {}
    for key, value in params.items():
        if key not in fields:
            raise UserError(f"task {name!r} has no parameter {key!r}; "
                             f"parameters: {', '.join(fields)}")
        clean[key] = coerce(value, hints[key], f"{name}.{key}")
    return cls(**clean)
