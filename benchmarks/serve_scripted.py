"""Run the tests' scripted OpenAI-compatible server in its own process; prints its URL, serves until killed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.scripted_server import ScriptedServer

if __name__ == "__main__":
    server = ScriptedServer(latency_s=float(sys.argv[1]) if len(sys.argv) > 1 else 0.1)
    server.start()
    print(server.url, flush=True)
    while True:
        time.sleep(3600)
