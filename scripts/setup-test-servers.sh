#!/usr/bin/env bash
# Install what the integration tests and the demo serve locally (nothing yet beyond the Python packages).
set -euo pipefail
