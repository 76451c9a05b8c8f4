# Sourced by scripts/test.sh (as root, under `set -euo pipefail`): makes a docker daemon
# answer and a `debian:bookworm-slim` base image exist, for the image tests
# (crates/ferry/tests/image_*.rs). No registry is reachable from the test machines, so the
# base image is made here with debootstrap and `docker import`, once (cached).
# Exports FERRY_DOCKER (the CLI) and DOCKER_BUILDKIT=0 (the classic builder: no buildx needed).

ferry_docker_setup() {
    local cache=/var/cache/ferry-tools/docker
    mkdir -p "$cache"
    if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
        echo "setup/docker.sh: installing docker.io" >&2
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq docker.io >/dev/null
    fi
    if ! docker info >/dev/null 2>&1; then
        echo "setup/docker.sh: no docker daemon answers; starting dockerd" >&2
        # Inside a container overlay2 may be refused; vfs always works (the image is small).
        local driver=overlay2
        if ! grep -qw overlay /proc/filesystems || [ "$(stat -f -c %T /var/lib)" = overlayfs ]; then
            driver=vfs
        fi
        nohup dockerd --storage-driver="$driver" >"$cache/dockerd.log" 2>&1 &
        local waited=0
        until docker info >/dev/null 2>&1; do
            sleep 1
            waited=$((waited + 1))
            if [ "$waited" -ge 60 ]; then
                echo "setup/docker.sh: dockerd did not answer within 60 s; see $cache/dockerd.log" >&2
                tail -n 5 "$cache/dockerd.log" >&2 || true
                return 1
            fi
        done
    fi
    if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
        local tarball="$cache/bookworm-minbase.tar"
        if [ ! -s "$tarball" ]; then
            echo "setup/docker.sh: building the bookworm base image with debootstrap (once)" >&2
            command -v debootstrap >/dev/null 2>&1 || {
                apt-get -o DPkg::Lock::Timeout=600 update -qq
                DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
            }
            local rootfs="$cache/rootfs"
            rm -rf "$rootfs"
            debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 || {
                echo "setup/docker.sh: debootstrap failed; see $cache/debootstrap.log" >&2
                return 1
            }
            # As the real slim image: no package lists, no docs.
            rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
            tar -C "$rootfs" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
            rm -rf "$rootfs"
        fi
        docker import "$tarball" debian:bookworm-slim >/dev/null
    fi
    export FERRY_DOCKER
    FERRY_DOCKER=$(command -v docker)
    export DOCKER_BUILDKIT=0
}

ferry_docker_setup
