"""`cotforge view`: a small local web app over aiohttp. Fixed routes only, no static files: every page is made from
the build's data (escaped) and nothing on disk is served, so no request can reach a file outside the folder. Bound
to 127.0.0.1 by default, and requests naming another host are refused (a web page elsewhere cannot point a
DNS-rebound name at it)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from cotforge.sweeps.layout import SweepDir
from cotforge.view.html import layout, text
from cotforge.view.pages import NAV, browse, overview, question
from cotforge.view.reader import Filters, Reader, ViewError, page_number, within_folder
from cotforge.view.store import open_reader
from cotforge.view.sweep import NAV as SWEEP_NAV
from cotforge.view.sweep import is_sweep, sweep_page

LOCALHOST = "127.0.0.1"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Middleware = Callable[[web.Request, _Handler], Awaitable[web.StreamResponse]]


def _page(markup: str, status: int = 200) -> web.Response:
    return web.Response(text=markup, status=status, content_type="text/html", charset="utf-8")


def _loopback(host: str) -> bool:
    name = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_check(bound: str) -> Callable[[web.Request, _Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if _loopback(bound) and not _loopback(request.host):
            raise web.HTTPForbidden(text="cotforge view answers requests to 127.0.0.1 or localhost only")
        return await handler(request)

    return check


def _said(error: Exception, folder: Path) -> str:
    """What went wrong, in a sentence that names no path outside the folder shown (an error raised while reading a
    file may name any). A ViewError is the viewer's own sentence; anything else is a file it could not read."""
    message = (str(error).strip().splitlines() or [""])[0]
    if not isinstance(error, ViewError):
        message = f"{folder.name}: a file cannot be read ({type(error).__name__}: {message}); it may be damaged"
    return within_folder(message, folder)


def _error_page(folder: Path, nav: tuple[tuple[str, str], ...]) -> _Middleware:
    """A page that fails (a damaged store, a torn file) is the viewer's own page saying why, never a traceback."""

    @web.middleware
    async def error_page(request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as error:
            body = f"<p class=bad>{text(_said(error, folder))}</p><p>Other pages may still be shown.</p>"
            return _page(layout("This page cannot be shown", body, nav, ""), status=500)

    return error_page


def make_app(folder: Path, host: str = LOCALHOST) -> web.Application:
    """The app for a build directory or a sweep folder; ViewError for anything else."""
    sweep = SweepDir(folder)
    if is_sweep(sweep):
        app = web.Application(middlewares=[_host_check(host), _error_page(folder, SWEEP_NAV)])

        async def sweep_handler(request: web.Request) -> web.Response:
            page = page_number(request.query.get("page", "0"))
            return _page(await asyncio.to_thread(sweep_page, sweep, page))

        app.router.add_get("/", sweep_handler)
        return app
    reader = open_reader(folder)
    app = web.Application(middlewares=[_host_check(host), _error_page(folder, NAV)])

    async def overview_handler(request: web.Request) -> web.Response:
        return _page(await asyncio.to_thread(overview, reader, bool(request.query.get("live"))))

    async def question_handler(request: web.Request) -> web.Response:
        wanted, search = request.query.get("id", ""), request.query.get("q", "").strip()
        return _page(await asyncio.to_thread(question, reader, wanted, search))

    async def browse_handler(request: web.Request) -> web.Response:
        return _page(await asyncio.to_thread(browse, reader, Filters.from_query(request.query)))

    app.on_startup.append(lambda _: _sum_early(reader))
    app.router.add_get("/", overview_handler)
    app.router.add_get("/question", question_handler)
    app.router.add_get("/browse", browse_handler)
    return app


async def _sum_early(reader: Reader) -> None:
    """The overview's sums read every answer once (later requests add only new ones): start at once, in a thread
    that does not hold up Ctrl-C, so they are ready, or nearly, when the first page is asked for. Any error (a
    damaged file) is left for the overview to report."""

    def total() -> None:
        with contextlib.suppress(Exception):
            reader.totals()

    threading.Thread(target=total, daemon=True).start()


async def _serve(app: web.Application, host: str, port: int, ready: Callable[[str], None]) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as error:
            raise ViewError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        ready(f"http://{shown}:{bound[1]}/")
        await asyncio.Event().wait()  # until Ctrl-C or SIGTERM cancels the task
    finally:
        await runner.cleanup()


def serve(folder: Path, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve the viewer until interrupted (KeyboardInterrupt reaches the caller once the server is closed);
    `ready` gets the URL once it listens."""
    app = make_app(folder, host)
    asyncio.run(_serve(app, host, port, ready))
