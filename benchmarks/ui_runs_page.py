"""Runs page first render with 1,000 runs in a temporary store.

Times (median of repeats): the store query, the page's layout function, the layout serialised
to JSON, and the real HTTP requests of a first paint through Flask (HTML shell, ``_dash-layout``
and the page-router callback that renders the page). With ``--browser`` (needs Debian's
chromium and chromium-driver) it also times navigation to the table being in the DOM in
headless Chromium. The target is under 1 s.

    python benchmarks/ui_runs_page.py [--runs 1000] [--browser]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from workbench.store import RunStore

PAGE_SIZE = 50  # ui.runs.index_page.PAGE_SIZE (the page module is imported by the app)
TASKS = ["modular-addition", "sparse-parity", "sort", "reverse", "group-composition"]


def seed(store: RunStore, n: int) -> None:
    """``n`` runs: mostly completed (summary), some failed/running (metric rows only).

    Rows go in through one transaction (the store's own connection helper) so seeding takes
    a second, not one transaction per run.
    """
    statuses = ["completed"] * 18 + ["failed", "running"]
    now = time.time()
    runs, metric_rows = [], []
    for i in range(n):
        status = statuses[i % len(statuses)]
        run_id = f"r-{i:012x}"
        metrics = {"train_loss": 1.0 / (i + 1), "test_loss": 2.0 / (i + 1),
                   "train_acc": (i % 100) / 100, "test_acc": (i % 97) / 97}
        summary = json.dumps({**metrics, "steps": 1000 + i}) if status == "completed" else None
        runs.append((run_id, f"run-{i:04d}", "train", TASKS[i % len(TASKS)],
                     json.dumps({"train": {"steps": 1000 + i}}), status, summary,
                     now - n + i, now - n + i))
        if status != "completed":
            metric_rows += [(run_id, step, k, v) for step in (100, 200, 300)
                            for k, v in metrics.items()]
    with store._connect() as conn:
        conn.executemany("INSERT INTO runs (id, name, kind, task, config, status, summary, "
                         "created, updated) VALUES (?,?,?,?,?,?,?,?,?)", runs)
        conn.executemany("INSERT INTO metrics (run_id, step, name, value) VALUES (?,?,?,?)",
                         metric_rows)


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def router_request(client, path: str = "/") -> dict:
    """POST the page-router callback exactly as the browser does on first load."""
    payload = {"output": ".._pages_content.children..._pages_store.data..",
               "outputs": [{"id": "_pages_content", "property": "children"},
                           {"id": "_pages_store", "property": "data"}],
               "inputs": [{"id": "_pages_location", "property": "pathname", "value": path},
                          {"id": "_pages_location", "property": "search", "value": ""}],
               "changedPropIds": ["_pages_location.pathname"], "state": []}
    resp = client.post("/_dash-update-component", json=payload)
    assert resp.status_code == 200, resp.status_code
    return resp


def browser_first_paint(app, n_rows: int, repeat: int) -> float:
    """Median time from navigation until the runs table holds ``n_rows`` rows (info line shown)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options)
    try:
        times = []
        for _ in range(repeat + 1):  # the first load warms the browser cache of Dash's JS
            t0 = time.perf_counter()
            driver.get(url)
            while not driver.execute_script(
                    "return !!document.querySelector('#runs-info') && document.querySelectorAll("
                    f"'#runs-table tbody tr').length >= {n_rows}"):
                time.sleep(0.01)
            times.append(time.perf_counter() - t0)
        return statistics.median(times[1:])
    finally:
        driver.quit()
        server.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time headless Chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp))
        t0 = time.perf_counter()
        seed(store, args.runs)
        print(f"seeded {args.runs} runs in {time.perf_counter() - t0:.1f} s")

        from ui.app import create_app
        from ui.runs.data import runs_overview

        app = create_app(store.home)
        page = sys.modules["ui.runs.index_page"]
        t_query, rows = timed(lambda: runs_overview(store), args.repeat)
        assert len(rows) == args.runs
        with app.server.test_request_context("/"):
            t_layout, layout = timed(page.layout, args.repeat)
            import plotly

            t_json, body = timed(lambda: json.dumps(layout, cls=plotly.utils.PlotlyJSONEncoder),
                                 args.repeat)
        client = app.server.test_client()
        client.get("/")  # first request sets the page routes up
        t_shell, _ = timed(lambda: client.get("/"), args.repeat)
        t_layout_req, _ = timed(lambda: client.get("/_dash-layout"), args.repeat)
        t_router, resp = timed(lambda: router_request(client), args.repeat)
        total = t_shell + t_layout_req + t_router
        print(f"runs_overview (store query, {args.runs} runs): {1000 * t_query:7.1f} ms")
        print(f"runs page layout():                        {1000 * t_layout:7.1f} ms")
        print(f"layout to JSON ({len(body) / 1024:.0f} KiB):                  "
              f"{1000 * t_json:7.1f} ms")
        print(f"GET / (HTML shell):                        {1000 * t_shell:7.1f} ms")
        print(f"GET /_dash-layout:                         {1000 * t_layout_req:7.1f} ms")
        print(f"POST page router (renders the runs page):  {1000 * t_router:7.1f} ms "
              f"({len(resp.data) / 1024:.0f} KiB)")
        print(f"server side of a first paint:              {1000 * total:7.1f} ms "
              f"({'under' if total < 1 else 'OVER'} the 1 s target)")
        if args.browser:
            repeat = max(1, args.repeat // 2)
            with tempfile.TemporaryDirectory() as empty:
                t_empty = browser_first_paint(create_app(empty), 0, repeat)
            t_browser = browser_first_paint(app, min(args.runs, PAGE_SIZE), repeat)
            print(f"headless Chromium, empty store (Dash boot): {1000 * t_empty:6.1f} ms")
            print(f"headless Chromium, {args.runs} runs, table painted: {1000 * t_browser:6.1f} ms "
                  f"({'under' if t_browser < 1 else 'OVER'} the 1 s target; "
                  f"{1000 * (t_browser - t_empty):+.0f} ms over the empty page)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
