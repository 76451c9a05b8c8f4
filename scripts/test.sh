#!/usr/bin/env bash
# Runs every check and test of Ferry. On a fresh Debian machine it first makes sure a
# PostgreSQL server answers on 127.0.0.1:5432 (starting it, or installing it, if needed):
# the store conformance suite and the integration tests run against it for real.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_HOST=127.0.0.1
PG_PORT=5432

postgres_answers() {
    (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
}

ensure_postgres() {
    if postgres_answers; then
        return
    fi
    echo "test.sh: no PostgreSQL on $PG_HOST:$PG_PORT; starting one" >&2
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$version" ]; then
        version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
        pg_createcluster "$version" main >/dev/null
    fi
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    # Tests connect as postgres over loopback without a password, as on the dev machines.
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    for _ in $(seq 1 30); do
        postgres_answers && break
        sleep 1
    done
    postgres_answers || { echo "test.sh: PostgreSQL did not start" >&2; exit 1; }
}

ensure_postgres

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== route files import no other route file"
# Handlers call crate::services, never each other: a file under routes/ may not name a
# sibling route module (`super::jobs`, `use super::{jobs, …}`), reach past its parent
# (`super::super::`), glob its parent (a top-level `use super::*;`; the same line in a
# `mod tests` of the file is fine) or name `crate::routes::`. Only routes/mod.rs wires them.
check_route_imports() {
    local routes=crates/ferry-control/src/routes
    local siblings
    siblings=$(find "$routes" -mindepth 1 -maxdepth 1 \( -name '*.rs' -o -type d \) -printf '%f\n' \
        | sed 's/\.rs$//' | grep -vx mod | sort -u | paste -sd '|' -)
    local failed=0 file
    while IFS= read -r file; do
        [ "$file" = "$routes/mod.rs" ] && continue
        if ! SIBLINGS="$siblings" perl -0777 -ne '
            s{//[^\n]*}{}g;
            my $names = $ENV{SIBLINGS};
            my @found;
            push @found, $1 while /\b(super::(?:$names)\b)/g;
            push @found, $1 while /\b(super::\{[^{}]*\b(?:$names)\b[^{}]*\})/g;
            push @found, $1 while /\b(super::super::)/g;
            push @found, $1 while /^(use super::\*)/mg;
            push @found, $1 while /\b(crate::routes::)/g;
            print "$ARGV: route file imports a route module: $_\n" for @found;
            exit(@found ? 1 : 0);
        ' "$file"; then
            failed=1
        fi
    done < <(find "$routes" -name '*.rs' | sort)
    return "$failed"
}
check_route_imports

echo "== the control plane builds without the connectors' runtime"
# ferry-control links ferry-connectors for configurations, SPECs and the registry only.
cargo check -p ferry-control --locked --quiet
if cargo tree -p ferry-control -e features -i ferry-connectors 2>/dev/null | grep -q '"runtime"'; then
    echo "test.sh: ferry-control enables ferry-connectors' runtime feature" >&2
    exit 1
fi

echo "== test tools"
# Each scripts/setup/*.sh installs (once, idempotently) a real tool some tests drive —
# Chromium, a Helm engine, docker, moto, OpenBao — and exports where it is.
for setup in scripts/setup/*.sh; do
    [ -e "$setup" ] || continue
    # shellcheck source=/dev/null
    . "$setup"
done

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    # nextest does not run doctests.
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi
