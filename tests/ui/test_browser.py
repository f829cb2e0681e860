"""The app in headless Chromium (dash[testing]): runs page, launching a tiny training job from
the form and following it to the end (with a reload mid-run), field errors, cancelling.

Jobs are real ``workbench train`` processes on a store in tmp_path; each page is saved under
test-output/screenshots/.
"""

from __future__ import annotations

import json
import re

import pytest
from selenium.webdriver.common.by import By

from ui.app import create_app
from ui.runs.launch import launch_training
from workbench import jobs
from browser_helpers import wait_until

pytestmark = pytest.mark.browser
ROWS = "#runs-table tbody tr"
JOB_TIMEOUT = 240  # two shared cores: a tiny job needs ~10 s to import torch, then trains




def text_of(dash_duo, selector):
    return dash_duo.find_element(selector).text


def field(dash_duo, key, kind="hp"):
    # Dash renders a dict id as compact JSON with sorted keys; selenium's By.ID does not
    # escape the quotes, so look it up by XPath.
    dom_id = json.dumps({"key": key, "type": kind}, separators=(",", ":"))
    return dash_duo.driver.find_element(By.XPATH, f"//*[@id='{dom_id}']")


def set_field(dash_duo, key, value):
    elem = field(dash_duo, key)
    dash_duo.clear_input(elem)
    elem.send_keys(value)


def curve_points(dash_duo, trace=0):
    return dash_duo.driver.execute_script(
        "const g = document.querySelector('#run-curves .js-plotly-plot');"
        f"return g && g.data ? g.data[{trace}].x.length : -1;")


def start(dash_duo, store):
    app = create_app(store.home, poll_ms=500)
    dash_duo.start_server(app)
    return app


def test_runs_page_filter_and_click_through(dash_duo, store, seed, screenshot):
    seed(store, name="grok-demo", acc=0.99)
    seed(store, name="sorter", task="sort", acc=0.7)
    seed(store, name="live", status="running", task="reverse", steps=1000)
    seed(store, name="broken", status="failed", evals=1)
    start(dash_duo, store)
    dash_duo.wait_for_element("#runs-table", timeout=20)
    rows = wait_until(lambda: dash_duo.find_elements(ROWS), 10, "the table rows")
    assert len(rows) == 4
    assert "showing 1–4 of 4 runs" in text_of(dash_duo, "#runs-info")
    screenshot(dash_duo, "runs")
    box = dash_duo.find_element("#runs-filter")
    box.send_keys("sort\n")
    wait_until(lambda: len(dash_duo.find_elements(ROWS)) == 1, 10, "filter")
    assert "sorter" in text_of(dash_duo, "#runs-table")
    dash_duo.find_element("#runs-table a").click()
    dash_duo.wait_for_contains_text("#progress-text", "done", timeout=10)
    assert wait_until(lambda: curve_points(dash_duo) == 4, 10, "4 points on the curve")
    assert text_of(dash_duo, "#run-status") == "completed"
    screenshot(dash_duo, "run-completed")


def test_invalid_value_shows_field_error_and_sends_nothing(dash_duo, store, screenshot):
    start(dash_duo, store)
    dash_duo.wait_for_element("#nav-1").click()
    dash_duo.wait_for_element("#new-launch", timeout=20)
    wait_until(lambda: field(dash_duo, "train.lr"), 10, "the lr field")
    set_field(dash_duo, "train.lr", "-1")
    set_field(dash_duo, "model.d_model", "wide")
    dash_duo.find_element("#new-launch").click()
    err = wait_until(lambda: field(dash_duo, "train.lr", "hp-err").text, 15, "the lr error")
    assert "lr must be positive" in err
    assert "d_model" in field(dash_duo, "model.d_model", "hp-err").text
    assert "nothing was started" in text_of(dash_duo, "#new-form-error")
    screenshot(dash_duo, "new-run-invalid")
    assert dash_duo.driver.current_url.endswith("/new")
    assert store.list_runs() == [] and jobs.list_jobs(store=store) == []


def test_launch_from_form_follow_reload_and_finish(dash_duo, store, screenshot):
    start(dash_duo, store)
    dash_duo.driver.get(dash_duo.server_url + "/new")
    dash_duo.wait_for_element("#new-launch", timeout=20)
    wait_until(lambda: field(dash_duo, "train.steps"), 10, "the steps field")
    screenshot(dash_duo, "new-run")
    set_field(dash_duo, "train.steps", "400")
    set_field(dash_duo, "train.eval_every", "10")
    dash_duo.find_element("#new-launch").click()
    url = wait_until(lambda: re.search(r"/runs/(r-[0-9a-f]{12})$", dash_duo.driver.current_url),
                     20, "the run page")
    run_id = url.group(1)
    job = jobs.job_for_run(run_id, store=store)
    # the job trains the run by id from its stored, resolved config (no settings restated)
    assert job is not None and job.argv[:3] == ["train", "--run-id", run_id]
    config = store.get_run(run_id).config
    assert config["train"]["steps"] == 400 and config["task_params"]["p"] == 13

    def step():
        m = re.match(r"([\d,]+) / 400 steps", text_of(dash_duo, "#progress-text"))
        return int(m.group(1).replace(",", "")) if m else 0

    wait_until(lambda: step() > 0, JOB_TIMEOUT, "the first progress")
    screenshot(dash_duo, "run-running")
    before = step()
    dash_duo.driver.refresh()  # re-attach: the page is rebuilt from the store
    dash_duo.wait_for_element("#progress-text", timeout=20)
    assert step() >= before
    dash_duo.wait_for_contains_text("#progress-text", "done", timeout=JOB_TIMEOUT)
    assert text_of(dash_duo, "#run-status") == "completed"
    assert "width: 100%" in dash_duo.find_element("#progress-inner").get_attribute("style")
    # every evaluation exactly once on the curve, across the reload
    assert wait_until(lambda: curve_points(dash_duo) == 40, 10, "40 points on the curve")
    assert curve_points(dash_duo, 3) == 40
    # the run is marked completed just before the CLI process exits
    wait_until(lambda: jobs.job_for_run(run_id, store=store).status == "completed", 30,
               "the job to end")
    dash_duo.wait_for_contains_text("#checkpoints", "step 400", timeout=10)
    screenshot(dash_duo, "run-done")


def test_cancel_a_job_started_before_the_server(dash_duo, store, screenshot):
    # The job is started like a previous server process would; this app only finds it in the
    # store — the same path as re-attaching after a server restart.
    run, job = launch_training(store, "modular-addition", "tiny", {"train.steps": "1000000"})
    start(dash_duo, store)
    dash_duo.driver.get(f"{dash_duo.server_url}/new")  # the New-run page lists it too
    dash_duo.wait_for_contains_text("#active-jobs", run.id, timeout=20)
    dash_duo.find_element(f"#active-jobs a[href='/runs/{run.id}']").click()
    dash_duo.wait_for_text_to_equal("#run-status", "running", timeout=JOB_TIMEOUT)
    wait_until(lambda: dash_duo.find_element("#cancel-btn").is_enabled(), 10, "cancel enabled")
    dash_duo.find_element("#cancel-btn").click()
    dash_duo.wait_for_contains_text("#cancel-feedback", "cancelling", timeout=10)
    dash_duo.wait_for_text_to_equal("#run-status", "cancelled", timeout=60)
    screenshot(dash_duo, "run-cancelled")
    assert not dash_duo.find_element("#cancel-btn").is_enabled()
    done = wait_until(lambda: jobs.job_status(job.id, store=store).done and
                      jobs.job_status(job.id, store=store), 30, "the job to end")
    assert done.status == "cancelled" and done.exit_code == 130  # the CLI stopped cleanly
    assert store.get_run(run.id).status == "cancelled"
