"""Transformer Programs: the programs page (``/programs``: train, follow jobs, list trained
programs), a program run's page (``/runs/<id>/program``: progress, decompiled code, step-through
trace, unembedding, compile) and the notebook ``ProgramWidget``.

- ``index_page``, ``run_page``: the pages; ``parts``: Dash pieces they share (no callbacks).
- ``figures``: figure and table factories shared by the pages and the widget;
  ``widgets``: ``ProgramWidget``.
"""

PAGES = ("ui.programs.index_page", "ui.programs.run_page")
NAV = (("Programs", "/programs"),)
