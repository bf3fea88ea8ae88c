"""Run the web app on a real HTTP server (waitress) at 127.0.0.1 for the tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from waitress import create_server

from newsletter.config import load_config
from newsletter.web import create_app


@contextmanager
def running_app(config_path, **app_options) -> Iterator[str]:  # noqa: ANN001
    """Yields the server's origin, e.g. http://127.0.0.1:41234."""
    app = create_app(load_config(config_path), **app_options)
    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Close every channel from inside the server's own loop (closing from here races
        # with its select() call); an empty socket map ends server.run().
        server.trigger.pull_trigger(lambda: [c.close() for c in list(server._map.values())])
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()
