#!/usr/bin/env bash
# Check (and, as root, install) the Debian packages the test suite needs:
#   chromium    -> /usr/bin/chromium (Playwright drives it by executable_path;
#                  `playwright install` cannot download browsers here)
#   postgresql  -> initdb/pg_ctl/postgres under /usr/lib/postgresql/<ver>/bin
#                  (tests start a throwaway server; see tests/support/postgres.py)
#   default-jre-headless -> a Java 17+ runtime for Apache Spark (publish --engine spark;
#                  tests/release/test_publish_engines.py compares its release with DuckDB's)
#
# Never skips silently: either everything is present, gets installed, or the
# script exits non-zero with the command to run.
#
# Overrides (mainly for testing this script):
#   CHROMIUM_PATH          chromium binary to look for   (default /usr/bin/chromium)
#   PG_LIB_DIR             where versioned PG dirs live  (default /usr/lib/postgresql)
#   JAVA_BIN               java binary to check          (default: $JAVA_HOME/bin/java, else java on PATH)
#   SYSTEM_DEPS_ASSUME_UID pretend to run as this uid    (default: id -u)
#   APT_UPDATED=1          skip `apt-get update` (already done by the caller)
set -euo pipefail

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
PG_LIB_DIR="${PG_LIB_DIR:-/usr/lib/postgresql}"
uid="${SYSTEM_DEPS_ASSUME_UID:-$(id -u)}"

log() { printf 'system-deps: %s\n' "$*" >&2; }

have_chromium() { [ -x "$CHROMIUM_PATH" ]; }

find_initdb() {
    local f
    for f in "$PG_LIB_DIR"/*/bin/initdb; do
        if [ -x "$f" ]; then printf '%s\n' "$f"; return 0; fi
    done
    return 1
}
have_postgres() { find_initdb >/dev/null; }

java_bin() {
    if [ -n "${JAVA_BIN:-}" ]; then printf '%s\n' "$JAVA_BIN"
    elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then printf '%s\n' "$JAVA_HOME/bin/java"
    else command -v java || printf 'java\n'; fi
}
# Spark 4 needs Java 17 or newer: `java -version` prints e.g. openjdk version "17.0.15".
java_major() {
    "$(java_bin)" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}
have_java() { local v; v="$(java_major 2>/dev/null || true)"; [ -n "$v" ] && [ "$v" -ge 17 ]; }

missing_packages() {
    local pkgs=()
    have_chromium || pkgs+=(chromium)
    have_postgres || pkgs+=(postgresql)
    have_java || pkgs+=(default-jre-headless)
    printf '%s\n' "${pkgs[@]+"${pkgs[@]}"}"
}

mapfile -t missing < <(missing_packages | sed '/^$/d')

if [ "${#missing[@]}" -eq 0 ]; then
    log "ok: chromium at $CHROMIUM_PATH; PostgreSQL initdb at $(find_initdb); Java $(java_major) at $(java_bin)"
    exit 0
fi

log "missing Debian package(s): ${missing[*]}"
install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"

if [ "$uid" != "0" ]; then
    {
        echo
        echo "ERROR: system packages required by the test suite are missing:"
        for p in "${missing[@]}"; do
            case "$p" in
                chromium)   echo "  - chromium   (need executable $CHROMIUM_PATH; or set CHROMIUM_PATH)";;
                postgresql) echo "  - postgresql (need $PG_LIB_DIR/<version>/bin/initdb)";;
                default-jre-headless) echo "  - default-jre-headless (need Java 17+ for Spark; found: $(java_major 2>/dev/null || echo none))";;
            esac
        done
        echo
        echo "Install them as root, e.g.:"
        echo "  sudo sh -c '$install_cmd'"
        echo
    } >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "ERROR: running as root but apt-get is not available; install manually: ${missing[*]}"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ "${APT_UPDATED:-0}" != "1" ]; then
    log "running apt-get update"
    apt-get update
fi

# Make sure each package name resolves to an installable candidate.
for p in "${missing[@]}"; do
    cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
        log "ERROR: apt has no installable candidate for package '$p' (check /etc/apt/sources.list*)"
        exit 1
    fi
    log "package $p candidate version $cand"
done

log "installing: ${missing[*]}"
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"

# Re-check: never claim success unless the binaries are really there now.
mapfile -t still < <(missing_packages | sed '/^$/d')
if [ "${#still[@]}" -ne 0 ]; then
    log "ERROR: after apt-get install, still missing: ${still[*]} (chromium: $CHROMIUM_PATH, initdb: $PG_LIB_DIR/*/bin/initdb, java 17+: $(java_bin))"
    exit 1
fi
log "ok: chromium at $CHROMIUM_PATH; PostgreSQL initdb at $(find_initdb); Java $(java_major) at $(java_bin)"
