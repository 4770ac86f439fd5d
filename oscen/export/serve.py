"""Serve an export folder on localhost: AudioWorklets need a secure context, which
``http://localhost`` is and ``file://`` is not."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript"}  # fmt: skip

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a re-export must be seen on reload
        super().end_headers()


class ExportServer:
    """An HTTP server for one folder on 127.0.0.1 (``port=0``: any free port), in a daemon thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`; :attr:`url` is the page.
    """

    def __init__(self, folder: str | Path, port: int = 0) -> None:
        folder = Path(folder)
        if not (folder / "index.html").is_file():
            raise FileNotFoundError(f"{folder} is not a web export (no index.html); run oscen export first")
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://localhost:{port}/index.html"

    def start(self) -> ExportServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="oscen-export-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ExportServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
