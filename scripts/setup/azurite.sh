# Sourced by scripts/test.sh (as root, under `set -euo pipefail`): Azurite's Blob service,
# a real Azure Blob Storage API (SharedKey signatures checked) on loopback, for
# crates/ferry/tests/storage_azure.rs. npm's azurite under /var/cache/ferry-tools/azurite,
# installed once. Exports FERRY_AZURITE (the `azurite-blob` program).

ferry_azurite_setup() {
    local prefix=/var/cache/ferry-tools/azurite
    if [ ! -x "$prefix/node_modules/.bin/azurite-blob" ]; then
        echo "setup/azurite.sh: installing azurite in $prefix (once)" >&2
        if ! command -v npm >/dev/null 2>&1; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
        fi
        npm install --silent --no-audit --no-fund --prefix "$prefix" azurite@3 >/dev/null
    fi
    export FERRY_AZURITE="$prefix/node_modules/.bin/azurite-blob"
}

ferry_azurite_setup
