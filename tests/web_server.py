"""Run the web app on a real HTTP server (waitress, serve's own limits) at 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from newsletter.config import load_config
from newsletter.web.app import create_app
from newsletter.web.mailqueue import MailQueue, QueueRun, QueueWorker
from newsletter.web.serving import make_server


@contextmanager
def running_app(config_path: Path, *, worker: bool = False, **app_options) -> Iterator[str]:  # noqa: ANN003
    """Yields the server's origin, e.g. http://127.0.0.1:41234. worker=True also runs the
    mail queue's background thread, as `newsletter serve` does; else tests deliver queued
    mail themselves with deliver_queued()."""
    config = load_config(config_path)
    background = QueueWorker(MailQueue(config), interval=0.2).start() if worker else None
    if background is not None:
        app_options.setdefault("on_queued", background.notify)
    server = make_server(create_app(config, **app_options), "127.0.0.1", 0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Close every channel from inside the server's own loop (closing from here races
        # with its select() call); an empty socket map ends server.run().
        try:
            server.trigger.pull_trigger(lambda: [c.close() for c in list(server._map.values())])
        except OSError:  # the loop already closed its trigger (it ended): close what is left
            for channel in list(server._map.values()):
                channel.close()
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()
        if background is not None:
            background.stop()


def deliver_queued(config_path: Path) -> QueueRun:
    """Run the mail queue until nothing is due; the tally of all runs."""
    queue = MailQueue(load_config(config_path))
    total = QueueRun()
    while (run := queue.run_once()).claimed:
        total = QueueRun(*(a + b for a, b in zip(vars(total).values(), vars(run).values(),
                                                  strict=True)))
    return total
