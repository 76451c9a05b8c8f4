# Sourced by scripts/test.sh (set -euo pipefail, as root): makes sure Debian's Chromium and
# its chromedriver are installed, for the browser tests (crates/ferry/tests/ui_*.rs), and
# tells them where they are. Quiet and instant once installed.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "setup/chromium.sh: installing chromium and chromium-driver" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
export FERRY_CHROMIUM=/usr/bin/chromium
export FERRY_CHROMEDRIVER=/usr/bin/chromedriver
