#!/usr/bin/env bash
# Packages Ferry's charts into a Helm chart repository: the charts' .tgz files and an
# index.yaml, in OUT_DIR (default deploy/helm/repo), for any static web server to serve at
# URL (the address `helm repo add` is given), e.g.
#   deploy/helm/build-repo.sh deploy/helm/repo https://charts.example.com/ferry
#   helm repo add ferry https://charts.example.com/ferry
#   helm upgrade --install ferry-eu ferry/ferry-data-plane --version 0.1.0 -n ferry --values values.yaml
# Needs helm (HELM, or `helm` on the PATH). An existing index.yaml in OUT_DIR is merged, so
# older chart versions stay installable.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/repo}"
url="${2:?usage: build-repo.sh OUT_DIR URL}"
helm="${HELM:-${FERRY_HELM:-helm}}"
mkdir -p "$out"
for chart in ferry-data-plane ferry; do
    "$helm" lint --strict --quiet "$here/$chart" \
        --set airbyteUrl=https://control-plane.example.com \
        --set database.secretName=ferry-database >/dev/null
    "$helm" package --destination "$out" "$here/$chart" >/dev/null
done
if [ -f "$out/index.yaml" ]; then
    "$helm" repo index "$out" --url "$url" --merge "$out/index.yaml"
else
    "$helm" repo index "$out" --url "$url"
fi
echo "chart repository in $out (index.yaml for $url)"
