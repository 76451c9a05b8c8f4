# Sourced by scripts/test.sh (as root, under `set -euo pipefail`): moto's server, a real
# S3 and AWS Secrets Manager API on loopback, for the storage and secrets-manager tests
# (crates/ferry/tests/storage*.rs, secrets_manager.rs). PyPI's moto[server] in a venv under
# /var/cache/ferry-tools/moto, installed once. Exports FERRY_MOTO_SERVER (the
# `moto_server` program).

ferry_moto_setup() {
    local venv=/var/cache/ferry-tools/moto
    if [ ! -x "$venv/bin/moto_server" ]; then
        echo "setup/moto.sh: installing moto[server] in $venv (once)" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
    fi
    export FERRY_MOTO_SERVER="$venv/bin/moto_server"
}

ferry_moto_setup
