"""Batch sweeps: models × tasks × target sparsities × methods × seeds, resumable.

A spec is YAML::

    models: [RUN_OR_DIR, ...]
    tasks: [induction, pairs.jsonl, ...]
    sparsities: [0.9, 0.95, 0.98]
    methods: [edge-pruning, eap]        # optional, default [edge-pruning]
    seeds: [0]                          # optional
    steps: 1000                         # optional settings passed to every entry
    examples: 256
    ablation: corrupted
    objective: kl

Every entry has a key (a hash of its settings); its result is written atomically to
``entries/KEY.json`` only when it finishes, so a sweep killed at any point resumes by skipping
the entries whose file exists. Entries run as ``workbench circuits discover`` subprocesses
(``--workers`` at a time) or in this process. The summary is written as CSV and JSON, with a
faithfulness (KL) vs edges plot as HTML (plotly) and PNG (kaleido when installed, otherwise a
small built-in scatter-plot renderer).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workbench.checkpoint import atomic_write_bytes, atomic_write_json
from workbench.errors import UserError
from workbench.files import read_mapping_file

_LIST_KEYS = {"models": None, "tasks": None, "sparsities": None,
              "methods": ["edge-pruning"], "seeds": [0]}
_SETTINGS = {"steps": int, "examples": int, "ablation": str, "objective": str,
             "batch_size": int, "lr": float}
COLUMNS = ["key", "model", "task", "method", "target_sparsity", "seed", "n_edges",
           "total_edges", "sparsity", "kl", "accuracy", "logit_diff", "exact_match",
           "wall_seconds", "run_id"]


def load_spec(path: str | Path) -> dict:
    path = Path(path)
    spec = read_mapping_file(path, "sweep spec", fmt="yaml")  # YAML, which JSON also is
    unknown = set(spec) - set(_LIST_KEYS) - set(_SETTINGS)
    if unknown:
        raise UserError(f"{path.name}: unknown keys {sorted(unknown)}")
    out: dict = {}
    for key, default in _LIST_KEYS.items():
        value = spec.get(key, default)
        if value is None:
            raise UserError(f"{path.name}: {key!r} is required")
        value = value if isinstance(value, list) else [value]
        if not value:
            raise UserError(f"{path.name}: {key!r} is empty")
        out[key] = value
    for s in out["sparsities"]:
        if not isinstance(s, (int, float)) or isinstance(s, bool) or not 0 <= s <= 1.5:
            raise UserError(f"{path.name}: sparsity must be in [0, 1.5], got {s!r}")
    from circuits.api import METHODS
    for m in out["methods"]:
        if m not in METHODS:
            raise UserError(f"{path.name}: unknown method {m!r}; methods: {', '.join(METHODS)}")
    for key, typ in _SETTINGS.items():
        if key in spec:
            try:
                out[key] = typ(spec[key])
            except (TypeError, ValueError):
                raise UserError(f"{path.name}: {key} must be {typ.__name__}, "
                                f"got {spec[key]!r}") from None
    return out


def entries(spec: dict, base: Path) -> list[dict]:
    settings = {k: spec[k] for k in _SETTINGS if k in spec}
    out = []
    for model, task, sparsity, method, seed in itertools.product(
            spec["models"], spec["tasks"], spec["sparsities"], spec["methods"], spec["seeds"]):
        model, task = _resolve(base, model), _resolve(base, task)
        entry = {"model": model, "task": task, "target_sparsity": float(sparsity),
                 "method": method, "seed": int(seed), **settings}
        entry["key"] = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()) \
            .hexdigest()[:16]
        out.append(entry)
    return out


def _resolve(base: Path, value) -> str:
    """Relative paths in a spec are relative to the spec file; names stay names."""
    value = str(value)
    return str((base / value).resolve()) if (base / value).exists() else value


def _argv(entry: dict, out: Path) -> list[str]:
    argv = [sys.executable, "-m", "workbench.cli", "circuits", "discover", "--model",
            entry["model"], "--task", entry["task"], "--target-sparsity",
            str(entry["target_sparsity"]), "--method", entry["method"], "--seed",
            str(entry["seed"]), "-o", str(out), "--json"]
    for key in _SETTINGS:
        if key in entry:
            argv += ["--" + key.replace("_", "-"), str(entry[key])]
    return argv


def _run_entry(entry: dict, root: Path, in_process: bool) -> dict:
    out = root / "circuits" / entry["key"]
    if in_process:
        from circuits.api import discover
        kw = {k: entry[k] for k in ("steps", "ablation", "objective", "batch_size", "lr")
              if k in entry}
        if "examples" in entry:
            kw["n_examples"] = entry["examples"]
        res = discover(entry["model"], entry["task"], target_sparsity=entry["target_sparsity"],
                       method=entry["method"], seed=entry["seed"], out_dir=out, **kw).to_json()
    else:
        proc = subprocess.run(_argv(entry, out), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                               else f"exit code {proc.returncode}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {**entry, **{k: res.get(k) for k in COLUMNS if k in res}}
    atomic_write_json(root / "entries" / f"{entry['key']}.json", row)
    return row


def run_sweep(spec_path: str | Path, *, workers: int = 1, dry_run: bool = False,
              in_process: bool = False, out_dir: str | Path | None = None,
              progress: bool = True) -> dict:
    """Run (or with ``dry_run`` list) the sweep; returns a summary dict."""
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    root = Path(out_dir) if out_dir else spec_path.with_suffix(".sweep")
    todo_all = entries(spec, spec_path.parent)
    done_keys = {p.stem for p in (root / "entries").glob("*.json")}
    todo = [e for e in todo_all if e["key"] not in done_keys]
    summary = {"total": len(todo_all), "skipped": len(todo_all) - len(todo), "done": 0,
               "failed": 0, "directory": str(root), "errors": []}
    if dry_run:
        summary["entries"] = todo_all
        summary["pending"] = [e["key"] for e in todo]
        summary["done"] = summary["skipped"]
        return summary
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    finished = summary["skipped"]

    def one(entry):
        try:
            return _run_entry(entry, root, in_process), None
        except (Exception, SystemExit) as exc:  # one entry failing must not stop the sweep
            return None, f"{entry['key']} ({entry['method']} {entry['model']} " \
                         f"{entry['task']} {entry['target_sparsity']}): {exc}"

    def report(err):
        nonlocal finished
        finished += 1
        if err:
            summary["failed"] += 1
            summary["errors"].append(err)
        if progress:
            print(f"[{finished}/{len(todo_all)}] {time.perf_counter() - t0:.0f}s"
                  + (f" failed: {err}" if err else ""), file=sys.stderr, flush=True)

    if in_process or workers == 1:
        for e in todo:
            report(one(e)[1])
    else:
        with ThreadPoolExecutor(workers) as pool:
            for _, err in pool.map(one, todo):
                report(err)
    rows = [json.loads(p.read_text()) for p in sorted((root / "entries").glob("*.json"))]
    keys = {e["key"] for e in todo_all}
    rows = [r for r in rows if r["key"] in keys]
    summary["done"] = len(rows)
    summary.update(write_summary(rows, root))
    return summary


def write_summary(rows: list[dict], root: Path) -> dict:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for r in sorted(rows, key=lambda r: (r["model"], r["task"], r["method"],
                                         r["target_sparsity"], r["seed"])):
        writer.writerow(r)
    atomic_write_bytes(root / "summary.csv", buf.getvalue().encode())
    atomic_write_json(root / "summary.json", rows)
    paths = {"csv": str(root / "summary.csv"), "json": str(root / "summary.json")}
    paths.update(plot(rows, root))
    return paths


def plot(rows: list[dict], root: Path) -> dict:
    """Faithfulness (KL, lower is better) against number of edges, one series per method."""
    import plotly.graph_objects as go
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r.get("n_edges") is None or r.get("kl") is None:
            continue
        label = f"{r['method']} | {Path(r['model']).name} | {Path(r['task']).name}"
        series.setdefault(label, []).append((r["n_edges"], r["kl"]))
    fig = go.Figure()
    for label, pts in sorted(series.items()):
        pts.sort()
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts],
                                 mode="lines+markers", name=label))
    fig.update_layout(title="Faithfulness vs circuit size", xaxis_title="edges",
                      yaxis_title="KL(full ‖ circuit)")
    out = {"html": str(root / "faithfulness.html")}
    fig.write_html(out["html"], include_plotlyjs=True)
    # Plotly's own static export (kaleido drives a headless Chrome/Chromium; the browser tests
    # need the same one). No browser: no PNG, and a message saying why; the HTML plot stands.
    try:
        png = _png_export(fig)
    except (ImportError, RuntimeError) as exc:
        out["png"] = None
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        out["png_error"] = (f"no faithfulness.png ({reason}): "
                            "Plotly's PNG export needs the kaleido package and Chrome or "
                            "Chromium (apt install chromium, or plotly_get_chrome); the plot is "
                            f"in {out['html']}")
        print(f"sweep: {out['png_error']}", file=sys.stderr, flush=True)
    else:
        atomic_write_bytes(root / "faithfulness.png", png)
        out["png"] = str(root / "faithfulness.png")
    return out


def _png_export(fig, attempts: int = 5) -> bytes:
    """Plotly's PNG export, retried when the headless browser fails in a way that passes.

    On a loaded machine (CI running browser tests beside a sweep) kaleido 1.5 often calls into
    its page before the page's scripts have loaded ("kaleido_scopes is not defined", a
    JavascriptError: 3 exports in 8 with 4 busy cores), or Chromium closes right after launch;
    the next try works. A missing kaleido, Chrome or system library is not retried: it fails
    the same way each time.
    """
    try:
        from choreographer.errors import BrowserDepsError
        from kaleido.errors import BrowserClosedError, BrowserFailedError, JavascriptError
        passing = (BrowserFailedError, BrowserClosedError, JavascriptError)
    except ImportError:  # no kaleido: nothing to retry, plotly raises its own "install kaleido"
        passing = ()
    for attempt in range(1, attempts):
        try:
            return fig.to_image(format="png", width=900, height=560)
        except passing as exc:
            if isinstance(exc, BrowserDepsError):  # missing system libraries: it stays so
                raise
            time.sleep(0.5 * attempt)
    return fig.to_image(format="png", width=900, height=560)  # the last try raises to the caller
