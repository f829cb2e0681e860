"""Run-page poll cost with a run that has 100,000 metric rows.

The page keeps the last metric row id it has drawn and each poll asks the store only for rows
after it (an index seek on ``metrics(run_id, id)``). This times that poll — the store query
alone and the whole Dash callback (run/job state, Patch of the figure) — with no new rows and
with one new evaluation (5 rows), against a full read of the run's history.

    python benchmarks/ui_poll.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from workbench.store import RunStore

NAMES = ("train_loss", "test_loss", "train_acc", "test_acc", "lr")


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp))
        run = store.create_run(kind="train", task="modular-addition",
                               config={"train": {"steps": 10 * args.rows}})
        other = store.create_run(kind="train", task="sort", config={"train": {"steps": 10}})
        n_steps = args.rows // len(NAMES)
        rows = [(run.id, 10 * s, k, 1.0 / (s + 1)) for s in range(1, n_steps + 1) for k in NAMES]
        with store._connect() as conn:  # one transaction: seeding, not what is measured
            conn.executemany("INSERT INTO metrics (run_id, step, name, value) VALUES (?,?,?,?)",
                             rows)
            # another run's rows interleave in the table, as with concurrent jobs
            conn.executemany("INSERT INTO metrics (run_id, step, name, value) VALUES (?,?,?,?)",
                             [(other.id, s, "train_loss", 0.1) for s in range(args.rows // 10)])
        store.set_status(run.id, "running")

        from ui.app import create_app
        from ui.polling import poll_run

        app = create_app(store.home)
        page = sys.modules["ui.runs.run_page"]
        last = poll_run(store, run.id)
        assert len(last.rows) == n_steps * len(NAMES)
        state = {"run_id": run.id, "last_id": last.last_id, "last_step": last.last_step,
                 "n_ckpt": 0}

        t_full_query = timed(lambda: store.metrics(run.id), max(3, args.repeat // 4))
        t_full_poll = timed(lambda: poll_run(store, run.id), max(3, args.repeat // 4))
        t_new_query = timed(lambda: store.metrics(run.id, since_id=last.last_id), args.repeat)
        t_new_poll = timed(lambda: poll_run(store, run.id, since_id=last.last_id,
                                            last_step=last.last_step), args.repeat)
        with app.server.test_request_context("/"):
            t_cb_idle = timed(lambda: page.poll(1, dict(state)), args.repeat)
            extra_times = []
            for i in range(args.repeat):
                step = 10 * (n_steps + 1 + i)
                store.log_metrics(run.id, step, {k: 0.5 for k in NAMES})
                t0 = time.perf_counter()
                out = page.poll(1, state)
                extra_times.append(time.perf_counter() - t0)
                state = out[-1]
                assert len(out[0].to_plotly_json()["operations"]) == 8  # 4 curves, x and y
            t_cb_new = statistics.median(extra_times)
        print(f"run with {n_steps * len(NAMES):,} metric rows ({n_steps:,} evaluations)")
        print(f"full read, store.metrics(run):                {1000 * t_full_query:8.2f} ms")
        print(f"full read, poll_run(since_id=0):              {1000 * t_full_poll:8.2f} ms")
        print(f"new rows only, store.metrics(since_id):       {1000 * t_new_query:8.2f} ms")
        print(f"new rows only, poll_run (run + job state):    {1000 * t_new_poll:8.2f} ms")
        print(f"poll callback, no new rows:                   {1000 * t_cb_idle:8.2f} ms")
        print(f"poll callback, one new evaluation (5 rows):   {1000 * t_cb_new:8.2f} ms")
        print(f"speed-up of the incremental poll over a full read: "
              f"{t_full_poll / t_new_poll:,.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
