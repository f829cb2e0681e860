"""Helpers shared by the page and browser tests (imported by the test modules of this folder)."""

from __future__ import annotations

import time


def wait_until(predicate, timeout, what):
    """Poll ``predicate`` until it returns something truthy (returned), or fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except Exception:  # element re-rendered between find and read
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def fourier_plot_count(dash_duo) -> int:
    """Plotly graphs rendered in the Fourier page's results section."""
    return dash_duo.driver.execute_script(
        "return document.querySelectorAll('#fx-results .js-plotly-plot').length;")


def plot_title(dash_duo, graph_id) -> str:
    """The title text of the plotly graph inside the element ``graph_id`` ('' if none)."""
    return dash_duo.driver.execute_script(
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return g && g.layout && g.layout.title ? g.layout.title.text : '';")


def find_component(component, element_id):
    """The component with ``element_id`` inside a Dash layout tree (None if absent)."""
    if getattr(component, "id", None) == element_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            found = find_component(child, element_id)
            if found is not None:
                return found
    return None
