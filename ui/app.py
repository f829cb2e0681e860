"""The browser workbench: a multi-page Dash 4 app (pages in ``ui/pages/``) over the run store.

``create_app(store_home, token)`` builds it; ``workbench serve`` runs it. Assets (Dash's own
JavaScript and ``ui/assets``) are served by the app itself, so it works offline. Jobs started from
the app are detached processes (:mod:`workbench.jobs`): they outlive the server and the browser,
and every page reads its state back from the store, so a reload or a server restart re-attaches.

Later capabilities add a module to ``ui/pages/`` calling ``dash.register_page``; a page that
analyses a run can pass ``analysis=lambda run: …`` (a predicate on :class:`workbench.store.Run`)
and ``path_template="/runs/<run_id>/…"``, and the run page links to it when it applies.
"""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Dash, dcc, html

from ui.security import install_token_guard
from ui.state import CONFIG_KEY
from workbench.store import RunStore

HERE = Path(__file__).parent
NAV = (("Runs", "/"), ("New run", "/new"), ("Programs", "/programs"), ("Circuits", "/circuits"))


def create_app(store_home: str | Path | None = None, token: str | None = None, *,
               job_env: dict[str, str] | None = None, poll_ms: int = 1000) -> Dash:
    """The app over the store at ``store_home`` (default ``$WORKBENCH_HOME``).

    With ``token``, every request must carry it (see :mod:`ui.security`). ``job_env`` adds
    environment variables to the jobs the app starts; ``poll_ms`` is the live-progress period.
    """
    # Named after the package so Dash imports pages as ``ui.pages.X``, the same modules a
    # plain ``import ui.pages.X`` gives (otherwise each page would be registered twice).
    app = Dash("ui", use_pages=True, pages_folder=str(HERE / "pages"),
               assets_folder=str(HERE / "assets"), serve_locally=True,
               suppress_callback_exceptions=True, title="Interpretability workbench",
               update_title=None)
    app.scripts.config.serve_locally = True
    app.css.config.serve_locally = True
    app.server.config[CONFIG_KEY] = RunStore(store_home)
    app.server.config["WORKBENCH_JOB_ENV"] = job_env
    app.server.config["WORKBENCH_POLL_MS"] = int(poll_ms)
    if token:
        install_token_guard(app.server, token)
    app.layout = html.Div([
        html.Header([
            html.Span("interp workbench", className="brand"),
            html.Nav([dcc.Link(label, href=href, className="nav-link", id=f"nav-{i}")
                      for i, (label, href) in enumerate(NAV)]),
        ], className="topbar"),
        html.Main(dash.page_container, className="content"),
    ])
    return app
