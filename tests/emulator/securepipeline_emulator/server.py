"""Serving the emulator on loopback until told to stop."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import BaseWSGIServer, make_server

from .app import EmulatorApp
from .faults import FaultPlan

HOST = "127.0.0.1"


def serve(port: int, faults: FaultPlan | None = None, enforce_iam: bool | None = None) -> None:
    app = EmulatorApp(faults, enforce_iam)
    server = make_server(
        HOST,
        port,
        app,
        threaded=True,
        # moto's handler keeps headers whose names contain underscores, which
        # werkzeug would otherwise drop (S3 metadata may use them).
        request_handler=MotoRequestHandler,
    )
    app.loopback.bind(f"http://{HOST}:{server.server_port}")
    # Handlers first: a parent may signal as soon as it reads the port.
    _stop_on_signals(server)
    _announce(server)
    try:
        server.serve_forever()
    finally:
        app.builds.shutdown()
        server.server_close()


def _announce(server: BaseWSGIServer) -> None:
    # The one line a parent process waits for. Anything moto prints later goes
    # to stderr, so stdout stays machine-readable.
    print(f"port={server.server_port}", flush=True)
    sys.stdout = sys.stderr


def _stop_on_signals(server: BaseWSGIServer) -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, and serve_forever()
        # runs in this (the main) thread: ask from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
