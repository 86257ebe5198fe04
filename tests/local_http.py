"""An HTTP server on 127.0.0.1 (a free port) in a daemon thread, for download tests."""
import http.server
import threading


class LocalHTTPServer:
    """Serves with ``handler`` (a ``BaseHTTPRequestHandler`` class) until :meth:`close`."""

    def __init__(self, handler):
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f'http://127.0.0.1:{self.httpd.server_address[1]}/{name}'

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
