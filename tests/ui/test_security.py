"""Access control: non-local binds need a token, and then every request must carry it."""

from __future__ import annotations

import pytest

from ui.app import create_app
from ui.security import COOKIE, check_bind, is_local
from workbench.errors import UserError


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_local_hosts_need_no_token(host):
    assert is_local(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_non_local_bind_without_token_is_refused(host):
    assert not is_local(host)
    with pytest.raises(UserError, match="--token"):
        check_bind(host, None)
    check_bind(host, "s3cret")


def test_token_required_on_every_request(store):
    app = create_app(store.home, token="s3cret")
    client = app.server.test_client()
    for url in ("/", "/new", "/_dash-layout", "/_dash-dependencies", "/assets/style.css"):
        assert client.get(url).status_code == 403, url
    assert client.get("/?token=wrong").status_code == 403
    ok = client.get("/?token=s3cret")
    assert ok.status_code == 200
    assert COOKIE in ok.headers.get("Set-Cookie", "")
    # the cookie now admits Dash's own requests without the query string
    assert client.get("/_dash-layout").status_code == 200
    assert client.post("/_dash-update-component", json={}).status_code != 403
    fresh = app.server.test_client()
    fresh.set_cookie(COOKIE, "wrong")
    assert fresh.get("/_dash-layout").status_code == 403


def test_no_token_means_open_on_localhost(store):
    client = create_app(store.home).server.test_client()
    assert client.get("/").status_code == 200


def test_serve_refuses_public_bind_without_token(store, capsys):
    from workbench.cli import main

    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "without an access token" in capsys.readouterr().err


def test_assets_served_locally(store):
    app = create_app(store.home)
    html = app.server.test_client().get("/").get_data(as_text=True)
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert "/_dash-component-suites/" in html
