#!/bin/sh
# install.sh: install hailo-vision from this checkout without the Debian package, in the package's
# layout, with its user and its unit. Run as root; it says what it did, and running it again updates
# the program and keeps your configuration.
#
#   sudo ./install.sh                     install, or update
#   sudo ./install.sh uninstall           remove the program and the unit; keep the configuration,
#                                         the state and the user (as `apt remove` does)
#   sudo ./install.sh uninstall --purge   also remove those (as `apt purge`); the group hailo stays
#
# Layout: /usr/lib/hailo-vision (the program in its own Python environment that sees the system's
# hailo_platform), /usr/bin/hailo-vision and hailo-visionctl, /usr/share/hailo-vision/models (the
# demo models), /usr/share/doc/hailo-vision, /etc/hailo/vision/{config.yaml,environment},
# /var/lib/hailo-vision (state), the unit /etc/systemd/system/hailo-vision.service, the user
# hailo-vision in the group hailo.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
USER_NAME=hailo-vision
NPU_GROUP=hailo
VENV=/usr/lib/hailo-vision
SHARE=/usr/share/hailo-vision
ETC=/etc/hailo/vision
STATE=/var/lib/hailo-vision
UNIT=/etc/systemd/system/hailo-vision.service
MAN=/usr/share/man/man1
DOC=/usr/share/doc/hailo-vision
COMMANDS="hailo-vision hailo-visionctl"

say() { echo "install.sh: $*"; }
fail() { echo "install.sh: $*" >&2; exit 1; }
systemd_runs() { [ -d /run/systemd/system ]; }

preconditions() {
    [ "$(id -u)" = 0 ] || fail "run it as root (sudo $0 $*)"
    if dpkg-query -W -f '${db:Status-Status}' hailo-vision 2>/dev/null | grep -qx installed; then
        fail "the Debian package hailo-vision is installed: update or remove it with apt instead"
    fi
}

install_all() {
    /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || fail "hailo-vision needs Python 3.11 or later as /usr/bin/python3"
    /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null \
        || fail "Python's venv module is missing: apt install python3-venv"

    if getent group "$NPU_GROUP" >/dev/null; then say "group $NPU_GROUP: exists"
    else groupadd --system "$NPU_GROUP"; say "group $NPU_GROUP: created (for the NPU's device node)"; fi
    if getent passwd "$USER_NAME" >/dev/null; then say "user $USER_NAME: exists"
    else
        useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
        say "user $USER_NAME: created"
    fi
    usermod -a -G "$NPU_GROUP" "$USER_NAME"
    install -d -o "$USER_NAME" -g "$NPU_GROUP" -m 0750 "$STATE"
    say "state: $STATE (owner $USER_NAME:$NPU_GROUP)"

    stage=$(mktemp -d /var/tmp/hailo-vision-install.XXXXXX)
    trap 'rm -rf "$stage"' EXIT
    say "building the Python environment (pip, from PyPI) ..."
    "$HERE/packaging/debian/install-tree" "$HERE" "$stage"
    replace "$stage$VENV" "$VENV"
    replace "$stage$SHARE" "$SHARE"
    "$VENV/bin/python3" -m compileall -q -j 0 "$VENV/lib" >/dev/null || true
    say "program: $VENV (bytecode compiled), demo models: $SHARE/models"
    for command in $COMMANDS; do
        ln -sfn "$VENV/bin/$command" "/usr/bin/$command"
        gzip -9n < "$HERE/packaging/debian/$command.1" > "$MAN/$command.1.gz"
    done
    say "commands: /usr/bin/hailo-vision, /usr/bin/hailo-visionctl (with man pages)"
    install -d "$DOC"
    install -m 0644 "$HERE/README.md" "$HERE/docs/TROUBLESHOOTING.md" "$HERE/docs/API_SPEC.md" "$DOC"
    say "documentation: $DOC"

    install -d "$ETC"
    for file in config.yaml environment; do
        if [ ! -e "$ETC/$file" ]; then
            install -m 0644 "$stage$ETC/$file" "$ETC/$file"; say "config: $ETC/$file installed"
        elif cmp -s "$stage$ETC/$file" "$ETC/$file"; then
            say "config: $ETC/$file unchanged"
        else
            install -m 0644 "$stage$ETC/$file" "$ETC/$file.new"
            say "config: $ETC/$file kept as you edited it; this version's is $ETC/$file.new"
        fi
    done

    install -m 0644 "$HERE/packaging/debian/hailo-vision.service" "$UNIT"
    if systemd_runs; then
        systemctl daemon-reload
        systemctl enable hailo-vision.service >/dev/null 2>&1
        systemctl restart hailo-vision.service
        say "unit: $UNIT enabled and (re)started; see: hailo-visionctl status"
    else
        say "unit: $UNIT installed; systemd is not running here, start it with:"
        say "  sudo -u $USER_NAME -g $NPU_GROUP hailo-vision serve"
    fi
}

# Move a freshly built folder into place; the previous one goes only once the new one is there.
replace() {
    if [ -e "$2" ]; then mv "$2" "$2.old"; fi
    mv "$1" "$2"
    rm -rf "$2.old"
}

uninstall_all() {
    if systemd_runs && [ -e "$UNIT" ]; then
        systemctl disable --now hailo-vision.service >/dev/null 2>&1 || true
    fi
    rm -f "$UNIT"
    if systemd_runs; then systemctl daemon-reload; fi
    for command in $COMMANDS; do rm -f "/usr/bin/$command" "$MAN/$command.1.gz"; done
    rm -rf "$VENV" "$SHARE" "$DOC"
    say "removed: the unit, the commands, $VENV, $SHARE, $DOC"
    if [ "${1:-}" != --purge ]; then
        say "kept: $ETC, $STATE and the user $USER_NAME (uninstall --purge removes them)"
        return
    fi
    rm -rf "$ETC" "$STATE"
    rmdir /etc/hailo 2>/dev/null || true
    if getent passwd "$USER_NAME" >/dev/null; then userdel "$USER_NAME"; fi
    if getent group "$USER_NAME" >/dev/null; then groupdel "$USER_NAME"; fi
    say "purged: $ETC, $STATE, the user $USER_NAME; kept: the group $NPU_GROUP (Hailo's packages may use it)"
}

case "${1:-install}" in
    install) preconditions "$@"; install_all ;;
    uninstall) preconditions "$@"; uninstall_all "${2:-}" ;;
    *) fail "usage: $0 [install | uninstall [--purge]]" ;;
esac
