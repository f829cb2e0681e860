"""The browser workbench (Dash app, ``workbench serve``) and the notebook widgets. This is the top
layer: nothing imports ``ui``.

The shell (modules directly in ``ui/``) is what every capability shares:

- ``app`` builds the app and registers the capabilities' pages; ``cli`` is ``workbench serve``;
  ``security`` the localhost / token rule; ``state`` the store (and job environment) the app
  serves; ``assets/`` the stylesheet.
- ``components`` small layout pieces (status badge, progress bar, "run not found");
  ``figures`` the figure factories several capabilities draw (training curves, empty states);
  ``polling`` live progress read from the store; ``jobs`` the shared job controls (cancel).
- ``live_widget`` the base class of every notebook widget; ``widgets`` re-exports them all
  (``from ui.widgets import RunWidget``).

Each capability is a sub-package holding its pages, its figure factories and its widgets:
``ui/runs`` (runs table, New run, a run's page), ``ui/fourier``, ``ui/programs``,
``ui/circuits``. A capability imports the shell and the layers below ``ui``, never another
capability. docs/CONTRIBUTING.md has the recipe for adding one.
"""
