"""A tiny web app for Deis tests: it answers with who it is and one config value."""
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = "hello from {app} {release} port {port} greeting={greeting}\n".format(
            app=os.environ.get("DEIS_APP", "?"),
            release=os.environ.get("DEIS_RELEASE", "?"),
            port=os.environ.get("PORT", "?"),
            greeting=os.environ.get("GREETING", ""),
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("served " + (fmt % args) + "\n")
        sys.stderr.flush()


print("starting on port " + os.environ["PORT"], flush=True)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
