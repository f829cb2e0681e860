"""The sweep's faithfulness plot: Plotly's static PNG export (kaleido + Chromium), and a clear
message instead of a PNG where no browser exists."""

from __future__ import annotations

import struct

import pytest

from circuits.sweep import plot

ROWS = [{"method": m, "model": "/models/gpt2", "task": "/tasks/ioi.jsonl", "n_edges": n,
         "kl": kl} for m, pts in (("eap", ((10, 0.5), (40, 0.1))),
                                  ("edge-pruning", ((10, 0.2), (40, 0.05)))) for n, kl in pts]


def test_png_from_plotly(tmp_path):
    pytest.importorskip("kaleido")
    from choreographer.utils import get_browser_path

    if get_browser_path(["chromium", "chrome", "google-chrome"]) is None:
        pytest.skip("no Chrome/Chromium for kaleido")
    out = plot(ROWS, tmp_path)
    data = (tmp_path / "faithfulness.png").read_bytes()
    assert out["png"] == str(tmp_path / "faithfulness.png") and "png_error" not in out
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (900, 560)  # IHDR width, height


def test_no_browser_no_png_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    out = plot(ROWS, tmp_path)
    assert out["png"] is None and not (tmp_path / "faithfulness.png").exists()
    assert "Chrome or Chromium" in out["png_error"] and out["html"] in out["png_error"]
    assert (tmp_path / "faithfulness.html").is_file()
    assert "no faithfulness.png" in capsys.readouterr().err


def test_browser_failing_at_launch_is_retried(tmp_path, monkeypatch):
    errors = pytest.importorskip("choreographer.errors")
    kaleido_errors = pytest.importorskip("kaleido.errors")
    import plotly.graph_objects as go

    calls = []

    def flaky(self, **kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise errors.BrowserFailedError("The browser seemed to close immediately")
        if len(calls) == 2:  # what kaleido 1.5 raises when its page has not loaded yet
            raise kaleido_errors.JavascriptError("ReferenceError: kaleido_scopes is not defined")
        return b"\x89PNG\r\n\x1a\nrest"

    monkeypatch.setattr(go.Figure, "to_image", flaky)
    monkeypatch.setattr("circuits.sweep.time.sleep", lambda s: None)
    out = plot(ROWS, tmp_path)
    assert len(calls) == 3 and out["png"] == str(tmp_path / "faithfulness.png")
    assert (tmp_path / "faithfulness.png").read_bytes().startswith(b"\x89PNG")


def test_missing_browser_libraries_are_not_retried(tmp_path, monkeypatch):
    errors = pytest.importorskip("choreographer.errors")
    import plotly.graph_objects as go

    calls = []

    def no_deps(self, **kwargs):
        calls.append(kwargs)
        raise errors.BrowserDepsError()

    monkeypatch.setattr(go.Figure, "to_image", no_deps)
    out = plot(ROWS, tmp_path)
    assert len(calls) == 1 and out["png"] is None and "Chrome or Chromium" in out["png_error"]
