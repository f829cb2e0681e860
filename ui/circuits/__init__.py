"""Circuits: the circuits page (``/circuits``: launch a search, circuit runs, sweep curves,
compare two circuits), a run's circuits page (``/runs/<id>/circuits``: live search progress,
the layered graph with a sparsity slider, node ablation) and the notebook widgets
``CircuitWidget``, ``SearchWidget`` and ``CurvesWidget``.

- ``index_page``, ``run_page``: the pages; ``parts``: the search form, its launch and the graph
  component they share (no callbacks).
- ``figures``: the circuit layout and every circuits figure, shared by pages and widgets;
  ``widgets``: the notebook widgets.
"""

PAGES = ("ui.circuits.index_page", "ui.circuits.run_page")
NAV = (("Circuits", "/circuits"),)
