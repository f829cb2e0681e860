"""The task library: every built-in task registers itself when this package is imported.

Use :func:`make_task` (name + user parameters, validated) and ``Task.generate()``; custom tasks
come from JSON Lines files through :func:`load_jsonl_task`.
"""

# Importing the task modules registers their tasks.
from training.tasks import (algorithmic, custom, dyck, group_composition, groups,  # noqa: F401
                            induction, modular, parity)
from training.tasks.base import Example, Task, TaskData, token_accuracy
from training.tasks.custom import check_functional, load_jsonl_task
from training.tasks.registry import get_task_class, make_task, task_names

__all__ = [
    "Example", "Task", "TaskData", "check_functional", "get_task_class", "load_jsonl_task",
    "make_task", "task_names", "token_accuracy",
]
