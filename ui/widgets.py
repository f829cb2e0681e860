"""The notebook widgets, one import away: ``from ui.widgets import RunWidget`` (and
``FourierWidget``, ``ProgramWidget``, ``CircuitWidget``, ``SearchWidget``, ``CurvesWidget``,
``PretrainWidget``, ``ProbesWidget``, ``KnowledgeWidget``, ``PriorWidget``).

Each widget lives with its capability (``ui/<capability>/widgets.py``, built on
:class:`ui.live_widget.LiveWidget`); this module only re-exports them. The capability widgets are
imported on first use, so ``from ui.widgets import RunWidget`` does not load the circuits or
programs packages.
"""

from __future__ import annotations

import importlib

from ui.live_widget import LiveWidget
from ui.runs.widgets import RunWidget

# widget name -> the module that defines it (imported when the name is first asked for)
CAPABILITY_WIDGETS = {
    "FourierWidget": "ui.fourier.widgets",
    "ProgramWidget": "ui.programs.widgets",
    "CircuitWidget": "ui.circuits.widgets",
    "SearchWidget": "ui.circuits.widgets",
    "CurvesWidget": "ui.circuits.widgets",
    "PretrainWidget": "ui.pretrain.widgets",
    "ProbesWidget": "ui.probes.widgets",
    "KnowledgeWidget": "ui.probes.widgets",
    "PriorWidget": "ui.prior.widgets",
}


def __getattr__(name: str):
    if name in CAPABILITY_WIDGETS:
        return getattr(importlib.import_module(CAPABILITY_WIDGETS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LiveWidget", "RunWidget", *CAPABILITY_WIDGETS]
