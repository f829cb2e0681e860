"""Runs: the runs table (``/``), the New-run form (``/new``) and a run's page (``/runs/<id>``:
config, live curves, progress, checkpoints, cancel, links to the analyses that apply), plus the
notebook ``RunWidget``.

- ``index_page``, ``new_page``, ``run_page``: the pages (each calls ``dash.register_page``).
- ``data``: the runs-table queries; ``launch``: the New-run form's validation and launch.
- ``widgets``: ``RunWidget``. Its curves come from the shell's :mod:`ui.figures`, shared with
  other capabilities that draw training curves.
"""

# page modules, loaded by ui.app.create_app for every app (see ui.app.load_pages)
PAGES = ("ui.runs.index_page", "ui.runs.new_page", "ui.runs.run_page")
# (label, href) links in the top bar
NAV = (("Runs", "/"), ("New run", "/new"))
