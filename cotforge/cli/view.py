"""`cotforge view`: the local web viewer of a build directory, a Hub corpus or a sweep folder."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from cotforge.cli.common import err, fail, interrupt, out, service_code, warn
from cotforge.exitcodes import INTERRUPTED
from cotforge.fetch import pulled_dir
from cotforge.safety.names import UnsafeName


def view(
    target: Annotated[str, typer.Argument(help="A build directory, a sweep folder, or a dataset repo on the Hub")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on. Default: a free one")] = 0,
    host: Annotated[
        str, typer.Option(help="Address to listen on. Anything but 127.0.0.1 shows the data to the network")
    ] = "127.0.0.1",
    open_browser: Annotated[bool, typer.Option("--open", help="Open the viewer in a web browser")] = False,
    revision: Annotated[str | None, typer.Option(help="A Hub corpus's branch, tag or commit. Default: main")] = None,
) -> None:
    """Look at the data: a local web app with the build's overview and plots, one question answered at every level
    side by side, and pages of records and rejections with filters; refresh while a build runs to see new answers.
    A sweep folder shows its report and, per held-out question, which cells got it right. Ctrl-C stops it."""
    from cotforge.view import ViewError, serve

    folder = Path(target)
    if not folder.is_dir():
        from cotforge.api import pull
        from cotforge.hub import HubError

        try:
            folder = pulled_dir(target, "view")
        except UnsafeName as error:
            raise fail(f"{target}: not a folder, and not a Hub repo id ({error})") from None
        try:
            pull(target, folder, revision=revision, overwrite=True)
        except HubError as error:
            raise fail(f"{target}: not a folder, and {error}", service_code(error.usage)) from None
        out.print(f"pulled {target} into {folder}", highlight=False)
    if host != "127.0.0.1":
        warn(f"listening on {host}: anyone who can reach this address can read the corpus")

    def ready(url: str) -> None:
        out.print(f"cotforge view: {url} (Ctrl-C stops it)", highlight=False)
        if open_browser:
            webbrowser.open(url)

    try:
        serve(folder, host, port, ready)
    except ViewError as error:
        raise fail(str(error)) from None
    except KeyboardInterrupt:
        interrupt.explained = True
        err.print("viewer stopped", highlight=False)
        raise typer.Exit(INTERRUPTED) from None
