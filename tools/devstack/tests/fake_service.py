"""A stand-in service for supervisor tests: `api` answers 200 on every path, others just live."""

import http.server
import os
import sys
import time


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the stack log to what the test looks at


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else "worker"
    print(f"{role} up as {os.environ['ZAPHUB_INSTANCE_ID']} transport={os.environ['ZAPHUB_TRANSPORT']}")
    print(f"{os.environ['ZAPHUB_INSTANCE_ID']} nats={os.environ['ZAPHUB_NATS_URL']}")
    print(f"{os.environ['ZAPHUB_INSTANCE_ID']} replicas={os.environ['ZAPHUB_STREAM_REPLICAS']}")
    if role == "api":
        port = int(os.environ["ZAPHUB_API_PORT"])
        http.server.HTTPServer(("127.0.0.1", port), _Ready).serve_forever()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
