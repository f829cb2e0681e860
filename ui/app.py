"""The browser workbench: a multi-page Dash 4 app over the run store.

``create_app(store_home, token)`` builds it; ``workbench serve`` runs it. Assets (Dash's own
JavaScript and ``ui/assets``) are served by the app itself, so it works offline. Jobs started from
the app are detached processes (:mod:`workbench.jobs`): they outlive the server and the browser,
and every page reads its state back from the store, so a reload or a server restart re-attaches.

Pages are registered explicitly: each capability sub-package listed in :data:`CAPABILITIES`
(``ui/runs``, ``ui/fourier``, ...) names its page modules in ``PAGES`` and its top-bar links in
``NAV``; each page module calls ``dash.register_page``. A page that analyses a run passes
``analysis=lambda run: …`` (a predicate on :class:`workbench.store.Run`) and
``path_template="/runs/<run_id>/…"``, and the run page links to it when it applies.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import dash
from dash import Dash, dcc, html

from ui.security import install_token_guard
from ui.state import CONFIG_KEY
from workbench.store import RunStore

HERE = Path(__file__).parent
# the capability sub-packages of ui/, in top-bar order
CAPABILITIES = ("runs", "fourier", "programs", "circuits", "pretrain", "probes", "prior")


def capability_packages() -> list:
    return [importlib.import_module(f"ui.{name}") for name in CAPABILITIES]


def nav_links() -> list[tuple[str, str]]:
    """(label, href) of the top bar, from every capability's ``NAV``."""
    return [link for package in capability_packages() for link in package.NAV]


def load_pages() -> list[str]:
    """Run every page module of :data:`CAPABILITIES` for the app being built; their names.

    Dash hands the callbacks declared with ``@callback`` to the first app whose server starts
    and then forgets them, so a page module's body must run again for each app (as Dash's own
    ``pages_folder`` scan does): the first time by import, later by reload (the module object,
    and so ``sys.modules[name]``, stays the same). A page without ``layout=`` in
    ``register_page`` gets its module's ``layout`` function, as with ``pages_folder``.
    """
    names = [name for package in capability_packages() for name in package.PAGES]
    for name in names:
        module = sys.modules.get(name)
        module = importlib.reload(module) if module is not None else \
            importlib.import_module(name)
        page = dash.page_registry[name]
        if page.get("supplied_layout") is None:
            page["layout"] = module.layout
    _most_specific_first()
    return names


def _most_specific_first() -> None:
    """Order the registry so that longer paths are tried first. Dash matches a path template's
    variables with ``fnmatch``, whose ``*`` also spans ``/``: ``/runs/<run_id>`` would answer
    ``/runs/r-1/fourier`` if it came first (Dash sorts pages by module name)."""
    def segments(page) -> int:
        return (page.get("path_template") or page["path"]).strip("/").count("/")

    for page in sorted(dash.page_registry.values(), key=segments, reverse=True):
        dash.page_registry.move_to_end(page["module"])


def create_app(store_home: str | Path | None = None, token: str | None = None, *,
               job_env: dict[str, str] | None = None, poll_ms: int = 1000) -> Dash:
    """The app over the store at ``store_home`` (default ``$WORKBENCH_HOME``).

    With ``token``, every request must carry it (see :mod:`ui.security`). ``job_env`` adds
    environment variables to the jobs the app starts; ``poll_ms`` is the live-progress period.
    """
    # use_pages with no pages folder: the pages are the ones load_pages() registers
    app = Dash("ui", use_pages=True, pages_folder="", assets_folder=str(HERE / "assets"),
               serve_locally=True, suppress_callback_exceptions=True,
               title="Interpretability workbench", update_title=None)
    load_pages()
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
                      for i, (label, href) in enumerate(nav_links())]),
        ], className="topbar"),
        html.Main(dash.page_container, className="content"),
    ])
    return app
