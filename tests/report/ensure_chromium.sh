#!/usr/bin/env bash
# Install Debian's chromium for the report's browser tests when it is absent (CI calls this before
# the tests; tests/report/report_browser.py calls it too). Needs root, as apt-get does.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
