#!/bin/sh
# Installs the Debian packages the build, the server and the tests need, when any is missing.
# Runs apt-get as root, or through sudo for another user.
set -eu
PKGS="gcc make pkg-config libzmq3-dev libexpat1-dev libssl-dev libhiredis-dev check libidn-dev
libmicrohttpd-dev libwslay-dev libhttp-parser-dev libc-ares-dev redis-server haproxy openssl python3 python3-pytest python3-pytest-xdist
python3-slixmpp python3-aiohttp python3-zmq python3-prometheus-client python3-openssl
clang libclang-rt-14-dev sslscan valgrind profanity tmux go-sendxmpp
coturn python3-websockets"
missing=""
# The browser test (tests/integration/test_browser_converse.py).
PKGS="$PKGS chromium chromium-driver python3-selenium libnss3-tools"
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm fetches the browser test's Converse.js (tools/browser-deps.sh); Debian's npm only when
# none is installed (a Node.js from elsewhere brings its own).
command -v npm >/dev/null 2>&1 || missing="$missing npm"
# Debian's security updates of expat 2.5 carry fixes the parser relies on (and the switch that
# turns off reparse deferral); an older install is upgraded.
if [ -f /usr/include/expat.h ] && ! grep -q XML_SetReparseDeferralEnabled /usr/include/expat.h; then
    missing="$missing libexpat1 libexpat1-dev"
fi
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
