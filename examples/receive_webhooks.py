"""A webhook receiver for trying driftline's alerts: prints each JSON event POSTed to it, one per line.

    python3 examples/receive_webhooks.py 9000 > events.jsonl &

It listens on 127.0.0.1 only and answers 204 to every POST; a retraining pipeline would start its job here.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Events(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        event = json.loads(self.rfile.read(length) or b"null")
        sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
        sys.stdout.flush()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: stdout holds only the events."""


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    with ThreadingHTTPServer(("127.0.0.1", port), _Events) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
