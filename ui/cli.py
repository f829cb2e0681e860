"""``workbench serve``: run the browser workbench (localhost by default; a non-local bind
needs ``--token``, which every request must then carry)."""

from __future__ import annotations

import argparse
import os
import threading
import webbrowser


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the browser workbench")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument("--token", default=os.environ.get("WORKBENCH_TOKEN"),
                   help="access token required on every request (needed for a non-local "
                        "--host; default $WORKBENCH_TOKEN)")
    p.add_argument("--open", action="store_true", help="open the app in a web browser")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (reloader, dev tools)")
    p.set_defaults(handler=_serve)


def _serve(args) -> int:
    from ui.security import check_bind  # Flask too: only when serving
    check_bind(args.host, args.token)
    from ui.app import create_app  # Dash is imported only when serving

    app = create_app(token=args.token)
    shown = "localhost" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown}:{args.port}/" + (f"?token={args.token}" if args.token else "")
    print(f"workbench: serving {app.server.config['WORKBENCH_STORE'].home} at {url}", flush=True)
    if args.open:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0
