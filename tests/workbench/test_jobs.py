"""The job runner: detached processes recorded in the store, status, cancel, dead-process
detection, several jobs at once. Jobs run tiny Python scripts (``command=``) so the tests are
quick; one test runs the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench import jobs
from workbench.errors import UserError
from workbench.store import RunStore

# A stand-in command: prints, sleeps argv[1] seconds, exits with argv[2]; on SIGTERM prints and
# exits 130 (as the training CLI does) unless argv[3] == "stubborn" (ignores SIGTERM).
SCRIPT = r"""
import signal, sys, time
secs, code = float(sys.argv[1]), int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else ""
def term(*_):
    print("got SIGTERM", flush=True)
    sys.exit(130)
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else term)
print("hello from the job", flush=True)
time.sleep(secs)
print("last line", flush=True)
sys.exit(code)
"""
CMD = [sys.executable, "-c", SCRIPT]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    return RunStore(tmp_path / "home")


def wait_done(job_id, store, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.job_status(job_id, store=store)
        if job.done:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout}s")


def test_start_records_running_job_and_completes(store):
    job = jobs.start_job(["0.5", "0"], store=store, command=CMD)
    assert job.status == "running" and job.pid is not None
    assert job.log_path.startswith(str(store.home / "jobs"))
    done = wait_done(job.id, store)
    assert (done.status, done.exit_code) == ("completed", 0)
    assert done.ended >= done.started
    assert "last line" in done.log_tail(5)
    assert [j.id for j in jobs.list_jobs(store=store)] == [job.id]


def test_failing_command_is_failed_with_exit_code(store):
    run = store.create_run(kind="train", task="t", config={})
    job = jobs.start_job(["0", "3"], run_id=run.id, store=store, command=CMD)
    assert job.log_path.startswith(str(store.run_dir(run.id)))
    done = wait_done(job.id, store)
    assert (done.status, done.exit_code) == ("failed", 3)
    # the run the job drove is not left "created": it is failed with the log's last lines
    run = store.get_run(run.id)
    assert run.status == "failed" and "exit code 3" in run.message and "last line" in run.message


def wait_started(job, timeout=30.0):
    """Until the script has installed its SIGTERM handler (it prints after doing so)."""
    deadline = time.time() + timeout
    while "hello from the job" not in job.log_tail():
        assert time.time() < deadline, job.log_tail()
        time.sleep(0.05)


def test_cancel_sends_sigterm(store):
    run = store.create_run(kind="train", task="t", config={})
    job = jobs.start_job(["60", "0"], run_id=run.id, store=store, command=CMD)
    wait_started(job)
    t0 = time.time()
    done = jobs.cancel_job(job.id, store=store, grace=20)
    assert done.status == "cancelled" and done.exit_code == 130  # the command's own exit
    assert time.time() - t0 < 20  # it did not need the SIGKILL
    assert store.get_run(run.id).status == "cancelled"
    assert jobs.cancel_job(job.id, store=store).status == "cancelled"  # idempotent


def test_cancel_escalates_to_sigkill(store):
    job = jobs.start_job(["60", "0", "stubborn"], store=store, command=CMD)
    wait_started(job)
    done = jobs.cancel_job(job.id, store=store, grace=0.5)
    assert done.status == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(job.pid, 0)


def test_dead_supervisor_is_marked_interrupted_with_log_tail(store):
    run = store.create_run(kind="train", task="t", config={})
    store.set_status(run.id, "running")
    job = jobs.start_job(["60", "0"], run_id=run.id, store=store, command=CMD)
    wait_started(job)
    os.killpg(job.pid, signal.SIGKILL)  # the whole job dies without recording anything
    time.sleep(0.3)
    assert jobs.job_status(job.id, store=store).status == "interrupted"
    job = jobs.job_status(job.id, store=store)
    assert job.exit_code is None and job.ended is not None
    run = store.get_run(run.id)
    assert run.status == "interrupted" and "died" in run.message
    assert "hello from the job" in run.message


def test_job_statuses_are_the_run_statuses():
    from workbench.lifecycle import FINISHED, RUN_STATUSES

    assert set(jobs.JOB_STATUSES) < set(RUN_STATUSES) and set(jobs.TERMINAL) == set(FINISHED)


def test_refresh_detects_a_job_started_by_another_process(store):
    # a row whose pid belongs to a process that is gone (not our child): refresh marks it
    # interrupted
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    store.execute("INSERT INTO jobs (id, run_id, argv, pid, status, log_path, started) "
                  "VALUES ('j-000000000001', NULL, '[]', ?, 'running', ?, ?)",
                  (proc.pid, str(store.home / "nolog.log"), time.time()))
    assert [j.id for j in jobs.refresh(store=store)] == ["j-000000000001"]
    assert jobs.job_status("j-000000000001", store=store).status == "interrupted"


def test_job_outlives_the_process_that_started_it(store):
    starter = ("import sys, json; from workbench.jobs import start_job; "
               "print(start_job(['1', '0'], command=json.loads(sys.argv[1])).id)")
    out = subprocess.run([sys.executable, "-c", starter, json.dumps(CMD)], capture_output=True,
                         text=True, timeout=120, env={**os.environ,
                                                     "WORKBENCH_HOME": str(store.home)})
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip().splitlines()[-1]  # the starter has exited by now
    done = wait_done(job_id, store)
    assert (done.status, done.exit_code) == ("completed", 0)  # recorded by the supervisor


def test_concurrent_jobs(store):
    started = [jobs.start_job(["1", str(i % 2)], store=store, command=CMD) for i in range(4)]
    assert len({j.pid for j in started}) == 4
    statuses = [wait_done(j.id, store).status for j in started]
    assert statuses == ["completed", "failed", "completed", "failed"]
    assert {j.status for j in jobs.list_jobs(store=store)} == {"completed", "failed"}
    assert len(jobs.list_jobs(store=store, status="failed")) == 2


def test_unknown_job_and_run(store):
    with pytest.raises(UserError, match="no job"):
        jobs.job_status("j-nope", store=store)
    with pytest.raises(UserError, match="no run"):
        jobs.start_job(["x"], run_id="r-000000000000", store=store, command=CMD)


@pytest.mark.integration
def test_real_cli_job_and_jobs_cli(store):
    job = jobs.start_job(["runs", "list", "--json"], store=store)
    done = wait_done(job.id, store, timeout=120)
    assert done.status == "completed", done.log_tail()
    assert any('"runs": []' in line for line in done.log_tail())
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "jobs", "show", job.id, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "completed"
