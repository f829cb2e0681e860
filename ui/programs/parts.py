"""Pieces shared by the Transformer Program pages (no page, no callbacks here): loading a
program run (cached: a finished run never changes), rendering a :class:`ui.programs.figures.Table`
as Dash components, finding the job that trains a run, and a run's epoch progress.

``workbench programs train`` creates its run itself, so the app starts it with a unique
``--name`` and finds the run (and, from the run, its job) by that name; this is also how the
pages re-attach after a reload or a server restart.
"""

from __future__ import annotations

import functools
import secrets

from dash import dcc, html

from programs.inspect import example_text
from ui.programs.figures import ROW_STYLE, Table, rows_to_history, shade_colour
from workbench import jobs
from workbench.errors import UserError
from workbench.store import RunStore

TRAIN_ARGV = ["programs", "train"]
CELL = {"border": "1px solid #e1e4ea", "padding": "2px 8px", "whiteSpace": "nowrap"}


@functools.lru_cache(maxsize=8)
def _load(home: str, run_id: str, updated: float):
    from programs.api import load_run
    from programs.decompile import decompile

    loaded = load_run(run_id, RunStore(home))
    source = decompile(loaded.program, title=f"Transformer Program for {loaded.task}")
    return loaded, source


def load_program(store: RunStore, run_id: str):
    """``(LoadedRun, source)`` of a completed program run (UserError if it has none)."""
    run = store.get_run(run_id)
    return _load(str(store.home), run.id, run.updated)


def example_input(loaded) -> str:
    """A test input of the run, as the user would type it (no BOS, no padding)."""
    return example_text(loaded.program, loaded.x_test if len(loaded.x_test) else loaded.x_train)


def dash_table(table: Table, id: str, *, first_columns_left: int = 2) -> html.Table:
    """``table`` as a Dash ``html.Table`` (row classes and cell shading as inline styles)."""
    head = html.Thead(html.Tr([html.Th(c, style=dict(CELL, background="#f0f2f5"))
                               for c in table.columns]))
    body = []
    for r, row in enumerate(table.rows):
        cls = table.row_class[r] if r < len(table.row_class) else ""
        cells = []
        for c, value in enumerate(row):
            colour = shade_colour(table.shade[r][c]) if table.shade else None
            style = dict(CELL, textAlign="left" if c < first_columns_left else "center")
            if colour:
                style["background"] = colour
            cells.append(html.Td(str(value), style=style))
        body.append(html.Tr(cells, className=("row-" + cls.replace(" ", " row-")) if cls
                            else None, style=_style(ROW_STYLE.get(cls, ""))))
    return html.Table([head, html.Tbody(body)], id=id, className="program-table",
                      style={"borderCollapse": "collapse", "fontSize": "13px"})


def _style(css: str) -> dict | None:
    out = {}
    for part in filter(None, css.split(";")):
        key, value = part.split(":", 1)
        head, *rest = key.strip().split("-")
        out[head + "".join(w.title() for w in rest)] = value.strip()
    return out or None


def new_run_name(task: str) -> str:
    return f"program-{task}-{secrets.token_hex(3)}"




def argv_summary(argv: list[str]) -> str:
    """A job's ``programs train`` arguments without the bookkeeping (``--name``, ``--json``)."""
    out, skip = [], False
    for a in argv[2:]:
        if skip:
            skip = False
        elif a == "--name":
            skip = True
        elif a != "--json":
            out.append(a)
    return " ".join(out)


def _argv_name(argv: list[str]) -> str | None:
    return argv[argv.index("--name") + 1] if "--name" in argv[:-1] else None


def program_jobs(store: RunStore, limit: int = 10) -> list[tuple[jobs.Job, object]]:
    """Recent ``programs train`` jobs, newest first, each with its run (None until created)."""
    out = []
    for job in jobs.list_jobs(store=store):
        if job.argv[:2] != TRAIN_ARGV:
            continue
        run, name = None, _argv_name(job.argv)
        if job.run_id:
            run = store.get_run(job.run_id)
        elif name:  # jobs started before the app pre-created runs
            try:
                run = store.get_run(name)
            except UserError:
                pass
        out.append((job, run))
        if len(out) >= limit:
            break
    return out


def job_for_program_run(store: RunStore, run) -> jobs.Job | None:
    """The job that trains ``run`` (started by the app), if any."""
    job = jobs.job_for_run(run.id, store=store)
    if job is not None or not run.name:
        return job
    for job in jobs.list_jobs(store=store):
        if job.argv[:2] == TRAIN_ARGV and _argv_name(job.argv) == run.name:
            return job
    return None


def total_epochs(run) -> int | None:
    cfg = run.config if isinstance(run.config, dict) else {}
    return (cfg.get("program") or {}).get("epochs")


def epoch_progress(store: RunStore, run, since_id: int = 0):
    """``(history of new rows, last row id, epochs done or None, last loss)``."""
    rows = store.metrics(run.id, since_id=since_id)
    history = rows_to_history(rows)
    last_id = rows[-1][0] if rows else since_id
    losses = history.get("loss", [])
    epoch = losses[-1][0] + 1 if losses else None
    return history, last_id, epoch, (losses[-1][1] if losses else None)


def compiled_links(store: RunStore, run) -> list:
    """Links to the transformers compiled from program ``run`` (their circuits pages)."""
    out = []
    for r in store.list_runs(kind="compiled"):
        if isinstance(r.config, dict) and r.config.get("program_run") == run.id:
            out.append(html.Li([dcc.Link(r.name or r.id, href=f"/runs/{r.id}"), " · ",
                                dcc.Link("search its circuit", href=f"/runs/{r.id}/circuits")]))
    return [html.Ul(out)] if out else []
