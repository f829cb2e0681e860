"""Fourier features: a run's Fourier page (``/runs/<id>/fourier``) and the notebook
``FourierWidget``, over the cached ``workbench fourier RUN --checkpoint all`` analysis.

- ``run_page``: the page (job controls, and the modular-arithmetic results of Nanda et al.).
- ``task_views``: the results section for sparse-parity and group-composition runs.
- ``figures`` (modular arithmetic) and ``task_figures`` (parity, groups): figure factories
  shared by the page and the widget; ``widgets``: ``FourierWidget``.
"""

PAGES = ("ui.fourier.run_page",)
NAV = ()  # reached from a run's page (its "Analyses" links), not from the top bar
