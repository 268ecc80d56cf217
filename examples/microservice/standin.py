"""A STAND-IN for the main backend's internal endpoints — for local demos only.

The seed's periodic jobs call a Django backend (``http://app:8000``) that is not
part of this example. ``conveyor up --example microservice`` runs this tiny
server instead so those jobs succeed locally: it answers the endpoints the jobs
call with ``{"ok": true, "standin": true}`` and prints each call. It does no
work at all (no digest is built, no exchange rate is fetched). In production,
point ``MICROSERVICE_BACKEND_URL`` at the real backend and do not run this.

    python -m examples.microservice.standin --port 8089
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from examples.microservice.tasks.cleanup_tasks import HEALTH_PATHS

DEFAULT_PORT = 8089
POST_PATHS = frozenset(
    {
        "/internal/reports/daily-digest/trigger",
        "/internal/exchange-rates/update",
        "/internal/notifications",
    }
)


def standin_port() -> int:
    return int(os.environ.get("MICROSERVICE_STANDIN_PORT", DEFAULT_PORT))


class Handler(BaseHTTPRequestHandler):
    server_version = "microservice-backend-standin/1"

    def _answer(self, known: frozenset[str] | tuple[str, ...]) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status = 200 if self.path in known else 404
        body: dict[str, Any] = {"ok": status == 200, "standin": True, "path": self.path}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        print(f"backend stand-in: {self.command} {self.path} -> {status}", flush=True)

    def do_GET(self) -> None:
        self._answer(HEALTH_PATHS)

    def do_POST(self) -> None:
        self._answer(POST_PATHS)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=standin_port())
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"backend stand-in (NOT a real backend) on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
