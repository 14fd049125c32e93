"""`cotforge view`: a local web viewer of a build directory (overview, a question side by side, browse records and
rejections, live while a build writes) or a sweep folder.

reader.py  what is read, a page at a time (Reader, Filters), by store.py (SQL on the store, read-only) or
           parquet.py (lazy scans of the Parquet outputs)
pages.py   the build's pages; sweep.py the sweep's page; html.py escaping, tables, inline SVG plots
app.py     the aiohttp app and server (127.0.0.1, fixed routes, no files served)
"""

from cotforge.view.app import LOCALHOST, make_app, serve
from cotforge.view.reader import ViewError

__all__ = ["LOCALHOST", "ViewError", "make_app", "serve"]
