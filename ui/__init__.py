"""The browser workbench (Dash app, ``workbench serve``) and the notebook widgets.

``ui.app.create_app`` builds the multi-page app (pages in ``ui/pages/``); ``ui.figures`` holds
the figure factories shared by the app and ``ui.widgets``; ``ui.data`` and ``ui.launch`` are
the queries and form logic the pages call. This is the top layer: nothing imports ``ui``.
"""
