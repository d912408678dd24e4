#!/bin/sh
# packaging/trixie-check.sh [CHROOT]: run `make setup && make deb-check` of this checkout's HEAD in a
# Debian trixie chroot (Python 3.13, trixie's debhelper, lintian and systemd), from a bookworm machine.
# Root only; needs debootstrap. The chroot (default /var/tmp/hailo-vision-trixie) is kept for the
# next run; its mounts are undone at the end. docs/PACKAGING.md says what this checks and what not.
set -eu

[ "$(id -u)" = 0 ] || { echo "trixie-check: run it as root" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${1:-/var/tmp/hailo-vision-trixie}

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase trixie "$ROOT" http://deb.debian.org/debian
fi
cleanup() { for m in dev/pts dev sys proc; do umount "$ROOT/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$ROOT/proc"
for m in dev dev/pts sys; do mount --bind "/$m" "$ROOT/$m"; done
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
rm -rf "$ROOT/root/src"
git clone -q "$HERE" "$ROOT/root/src"
chroot "$ROOT" /bin/sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends make python3 python3-venv ca-certificates'
# What the host trusts (a network that reaches PyPI through a proxy of its own needs its CA).
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    chroot "$ROOT" /bin/sh -c 'cd /root/src && make setup >/tmp/setup.log && make deb-check'
