# Sourced by scripts/setup/*.sh: `apt_install WHO PACKAGE...` installs Debian
# packages quietly, as root or through sudo, without starting their services
# (policy-rc.d; the tests start private instances). Without apt-get, root or
# sudo it says why and returns 0: the tests then report a loud skip.

apt_install() {
    local who=$1
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$who: apt-get not found; cannot install $* (the tests that need it will be skipped)" >&2
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo -n)
        else
            echo "$who: not root and no sudo; cannot install $*" >&2
            return 0
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "$who: installing $*" >&2
    local log
    log=$(mktemp)
    "${sudo[@]}" apt-get update -qq >"$log" 2>&1 || {
        cat "$log" >&2
        rm -f "$log"
        return 1
    }
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null &&
            "${sudo[@]}" chmod +x "$policy" && created_policy=1
    fi
    local status=0
    # --no-install-recommends: the servers only.
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1 || {
        status=$?
        cat "$log" >&2
    }
    [ "$created_policy" -eq 1 ] && "${sudo[@]}" rm -f "$policy"
    rm -f "$log"
    return "$status"
}
