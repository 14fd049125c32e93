"""Run an aiohttp application on 127.0.0.1 in a background thread, for the tests' local servers."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class BackgroundServer:
    """Subclasses build their routes in `make_app`; `start()` serves them on a free port until `stop()`."""

    port: int

    def make_app(self) -> web.Application:
        raise NotImplementedError

    def start(self):
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._runner = web.AppRunner(self.make_app(), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=4096)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the test server did not start")
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
