"""Read and write queries of the run store that serve one client each: the job runner's table
and the browser's runs table. A mixin of :class:`workbench.store.RunStore`, so callers outside
the core ask the store instead of writing SQL.
"""

from __future__ import annotations

import json
import time

KEY_METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")


class StoreQueries:
    """Methods :class:`~workbench.store.RunStore` gains; they use its ``execute``."""

    # -- the browser's runs table ------------------------------------------------------------
    def run_table(self) -> list[dict]:
        """One dict per run, newest first: id, name, kind, task, stored status, owner,
        created, ``steps`` (a trained run's) and :data:`KEY_METRICS` from the summary, plus
        ``has_summary``. Two statements however many runs there are: SQLite extracts the JSON
        fields (decoding 1,000 summaries in Python costs more)."""
        metrics_sql = ", ".join(f"json_extract(summary, '$.{k}') AS {k}" for k in KEY_METRICS)
        rows = self.execute("SELECT id, name, kind, task, status, owner, created, "
                            "summary IS NOT NULL AS has_summary, "
                            f"json_extract(config, '$.train.steps') AS steps, {metrics_sql} "
                            "FROM runs ORDER BY created DESC")
        return [dict(r) for r in rows]

    def result_keys(self, kinds: tuple[str, ...]) -> dict[str, dict[str, list[str]]]:
        """``{run_id: {kind: [key, ...]}}`` of every stored result of ``kinds``, in one
        statement and without reading the payloads (index pages list the runs that hold
        results, and poll while a job runs)."""
        rows = self.execute("SELECT run_id, kind, key FROM results WHERE kind IN "
                            f"({','.join('?' * len(kinds))}) ORDER BY run_id, kind, key",
                            list(kinds))
        out: dict[str, dict[str, list[str]]] = {}
        for run_id, kind, key in rows:
            out.setdefault(run_id, {}).setdefault(kind, []).append(key)
        return out

    def latest_metrics_of(self, run_ids: list[str],
                          names: tuple[str, ...] = KEY_METRICS) -> dict[str, dict[str, float]]:
        """The newest value of each of ``names`` per run (from each run's last 16 rows)."""
        out: dict[str, dict[str, float]] = {}
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i:i + 500]
            # The last eval step logs one row per metric; 16 rows cover it with room to spare.
            rows = self.execute(
                "SELECT run_id, name, value FROM (SELECT run_id, name, value, ROW_NUMBER() "
                "OVER (PARTITION BY run_id ORDER BY id DESC) AS rn FROM metrics WHERE run_id "
                f"IN ({','.join('?' * len(chunk))})) WHERE rn <= 16 ORDER BY rn DESC", chunk)
            for r in rows:  # oldest first, so the newest value of each name wins
                if r["name"] in names:
                    out.setdefault(r["run_id"], {})[r["name"]] = r["value"]
        return out

    # -- the job runner's table --------------------------------------------------------------
    def insert_job(self, job_id: str, run_id: str | None, argv: list[str],
                   log_path: str) -> None:
        self.execute("INSERT INTO jobs (id, run_id, argv, pid, status, log_path, started) "
                     "VALUES (?, ?, ?, NULL, 'running', ?, ?)",
                     (job_id, run_id, json.dumps(list(argv)), log_path, time.time()))

    def set_job_pid(self, job_id: str, pid: int) -> None:
        self.execute("UPDATE jobs SET pid=? WHERE id=?", (pid, job_id))

    def job_row(self, job_id: str) -> dict | None:
        rows = self.execute("SELECT * FROM jobs WHERE id=?", (job_id,))
        return dict(rows[0]) if rows else None

    def job_rows(self, *, run_id: str | None = None, status: str | None = None,
                 limit: int | None = None) -> list[dict]:
        """Job rows, newest first, filtered by run and status."""
        sql, args, where = "SELECT * FROM jobs", [], []
        if run_id is not None:
            where.append("run_id=?")
            args.append(run_id)
        if status is not None:
            where.append("status=?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [dict(r) for r in self.execute(sql, args)]
