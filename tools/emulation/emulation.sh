#!/usr/bin/env bash
# Set up (and undo) link emulation with Mahimahi on a Debian 12 machine, for abrsim's emulation
# tests and benchmarks/real_network.py (issue 15). Run as root.
#
#   tools/emulation/emulation.sh up      install and configure; idempotent
#   tools/emulation/emulation.sh down    undo exactly what "up" changed (as recorded)
#   tools/emulation/emulation.sh status  print what is recorded and what is in place
#
# What "up" does, each step recorded in $STATE_DIR so that "down" restores exactly that:
#   1. Mahimahi 0.98 (not packaged in Debian 12): the Debian 11 "bullseye" packages, fetched with a
#      private apt configuration (its own sources list, lists and cache under $STATE_DIR, the
#      machine's own apt settings untouched), installed with their Debian 12 dependencies. The
#      packages newly installed are recorded; "down" purges them (KEEP_PACKAGES=1 keeps them).
#   2. An iptables wrapper: iptables >= 1.8.8 exits with status 111 when its real and effective
#      user ids differ, which they do under the setuid mm-delay/mm-link. The wrapper sets the real
#      uid to 0 (possible only when already effectively root; it is NOT itself setuid) and execs
#      iptables-nft. It is installed as the "iptables" alternative; the previous choice is recorded.
#   3. An unprivileged user ($EMU_USER): Mahimahi refuses to run as root.
#   4. net.ipv4.ip_forward=1 (Mahimahi will not start without it); the old value is recorded.
#   5. A FORWARD rule rejecting traffic from Mahimahi's 100.64.0.0/10 to any address outside it:
#      emulated traffic stays on this host.
#   6. The real player's tools (issue 16, docs/real_player.md): ffmpeg (the DASH asset), npm (dash.js
#      with `npm pack`) and chromium (the browser), from Debian, when absent; the packages newly
#      installed are recorded and purged by "down" (KEEP_PACKAGES=1 keeps them). PLAYER_TOOLS=0
#      skips this step.
set -euo pipefail

STATE_DIR=${ABRSIM_EMULATION_STATE:-/var/lib/abrsim-emulation}
EMU_USER=${ABRSIM_EMULATION_USER:-abrsim-emu}
WRAPPER=/usr/local/sbin/abrsim-iptables-realuid
IPTABLES_NFT=/usr/sbin/iptables-nft
SHELL_NET=100.64.0.0/10
RULE=(FORWARD -s "$SHELL_NET" ! -d "$SHELL_NET" -m comment --comment abrsim-emulation -j REJECT)

log() { echo "emulation: $*" >&2; }
die() { log "$*"; exit 1; }
recorded() { [ -e "$STATE_DIR/$1" ]; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and changes sysctl/iptables)"; }

debian_mirror() {
    # The machine's own Debian mirror (deb822 or one-line sources), so no other host is contacted.
    local uri
    uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security \
            | head -n1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

installed_packages() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 ~ /^ii/ {print $2}' | sort; }

step_packages() {
    if recorded packages.done && command -v mm-delay >/dev/null; then return; fi
    command -v mm-delay >/dev/null && { log "mahimahi already installed (not by us)"; touch "$STATE_DIR/packages.done"; return; }
    local apt_dir="$STATE_DIR/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
    echo "deb $(debian_mirror) bullseye main" > "$apt_dir/sources.list"
    local private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
                   -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
                   -o APT::Sandbox::User=root)
    log "fetching mahimahi from bullseye (private apt configuration in $apt_dir)"
    apt-get -qq "${private[@]}" update
    (cd "$apt_dir/debs" && apt-get -qq "${private[@]}" download mahimahi libprotobuf23 libssl1.1)
    installed_packages > "$STATE_DIR/packages.before"
    log "installing mahimahi and its Debian 12 dependencies"
    apt-get -qq update
    # gnuplot-nox satisfies mahimahi's gnuplot dependency without a desktop toolkit.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        iptables gnuplot-nox gcc libc6-dev "$apt_dir"/debs/*.deb >/dev/null
    installed_packages | comm -13 "$STATE_DIR/packages.before" - > "$STATE_DIR/packages.installed"
    rm -rf "$apt_dir"  # the downloaded .deb files and the private lists
    log "installed $(wc -l < "$STATE_DIR/packages.installed") packages (recorded)"
    touch "$STATE_DIR/packages.done"
}

step_wrapper() {
    if recorded wrapper.done; then return; fi
    local previous
    previous=$(update-alternatives --query iptables 2>/dev/null | awk '/^Status:/{s=$2} /^Value:/{v=$2} END{print s" "v}')
    echo "$previous" > "$STATE_DIR/iptables.previous"
    local source
    source=$(mktemp --suffix=.c)
    cat > "$source" <<'C'
/* Run iptables-nft with real uid 0 (iptables >= 1.8.8 refuses to run when real uid != effective uid,
   as under the setuid Mahimahi tools). Not setuid itself: setuid(0) fails unless already root. */
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    if (setgid(0) != 0 || setuid(0) != 0) { perror("abrsim-iptables-realuid: setuid"); return 111; }
    argv[0] = "iptables";
    execv("/usr/sbin/iptables-nft", argv);
    perror("abrsim-iptables-realuid: exec iptables-nft");
    return 127;
}
C
    gcc -O2 -o "$WRAPPER" "$source"
    rm -f "$source"
    chmod 0755 "$WRAPPER"
    update-alternatives --quiet --install /usr/sbin/iptables iptables "$WRAPPER" 100
    update-alternatives --quiet --set iptables "$WRAPPER"
    touch "$STATE_DIR/wrapper.done"
}

step_user() {
    if recorded user.done; then return; fi
    if id "$EMU_USER" >/dev/null 2>&1; then
        echo no > "$STATE_DIR/user.created"
    else
        useradd --system --no-create-home --shell /usr/sbin/nologin "$EMU_USER"
        echo yes > "$STATE_DIR/user.created"
    fi
    touch "$STATE_DIR/user.done"
}

step_forward() {
    if ! recorded ip_forward.previous; then
        sysctl -n net.ipv4.ip_forward > "$STATE_DIR/ip_forward.previous"
    fi
    sysctl -q -w net.ipv4.ip_forward=1
    # The rule goes in before any emulated traffic, first in the chain.
    if ! iptables -C "${RULE[@]}" 2>/dev/null; then
        iptables -I "${RULE[@]}"
        touch "$STATE_DIR/rule.added"
    fi
}

step_player_tools() {
    [ "${PLAYER_TOOLS:-1}" = 1 ] || return 0
    local wanted=() tool package
    for tool in ffmpeg:ffmpeg npm:npm chromium:chromium; do
        package=${tool#*:}
        command -v "${tool%%:*}" >/dev/null || wanted+=("$package")
    done
    [ ${#wanted[@]} -gt 0 ] || return 0
    installed_packages > "$STATE_DIR/player_packages.before"
    log "installing the real player's tools: ${wanted[*]}"
    apt-get -qq update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
    installed_packages | comm -13 "$STATE_DIR/player_packages.before" - >> "$STATE_DIR/player_packages.installed"
    rm -f "$STATE_DIR/player_packages.before"
    log "installed $(wc -l < "$STATE_DIR/player_packages.installed") packages for the player (recorded)"
}

up() {
    need_root
    [ -c /dev/net/tun ] || die "/dev/net/tun is missing: Mahimahi needs it"
    mkdir -p "$STATE_DIR"
    chmod 0755 "$STATE_DIR"
    step_packages
    step_wrapper
    step_user
    step_forward
    step_player_tools
    touch "$STATE_DIR/up"
    log "ready: mm-delay $(command -v mm-delay), user $EMU_USER, ip_forward=1, FORWARD reject for $SHELL_NET"
}

down() {
    need_root
    [ -d "$STATE_DIR" ] || { log "nothing recorded in $STATE_DIR; nothing to undo"; return; }
    if recorded rule.added; then
        while iptables -C "${RULE[@]}" 2>/dev/null; do iptables -D "${RULE[@]}"; done
        rm -f "$STATE_DIR/rule.added"
    fi
    if recorded ip_forward.previous; then
        sysctl -q -w "net.ipv4.ip_forward=$(cat "$STATE_DIR/ip_forward.previous")"
        rm -f "$STATE_DIR/ip_forward.previous"
    fi
    if recorded user.created; then
        if [ "$(cat "$STATE_DIR/user.created")" = yes ] && id "$EMU_USER" >/dev/null 2>&1; then
            userdel "$EMU_USER"
        fi
        rm -f "$STATE_DIR/user.created" "$STATE_DIR/user.done"
    fi
    if recorded wrapper.done; then
        update-alternatives --quiet --remove iptables "$WRAPPER" || true
        rm -f "$WRAPPER"
        read -r status value < "$STATE_DIR/iptables.previous" || true
        if [ "${status:-}" = manual ] && [ -n "${value:-}" ] && [ -e "$value" ]; then
            update-alternatives --quiet --set iptables "$value"
        fi
        rm -f "$STATE_DIR/wrapper.done" "$STATE_DIR/iptables.previous"
    fi
    if recorded player_packages.installed && [ "${KEEP_PACKAGES:-0}" != 1 ]; then
        if [ -s "$STATE_DIR/player_packages.installed" ]; then
            log "purging the $(wc -l < "$STATE_DIR/player_packages.installed") player packages 'up' installed"
            # shellcheck disable=SC2046
            DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $(cat "$STATE_DIR/player_packages.installed") >/dev/null
        fi
        rm -f "$STATE_DIR/player_packages.installed"
    fi
    if recorded packages.installed && [ "${KEEP_PACKAGES:-0}" != 1 ]; then
        if [ -s "$STATE_DIR/packages.installed" ]; then
            log "purging the $(wc -l < "$STATE_DIR/packages.installed") packages 'up' installed"
            # shellcheck disable=SC2046
            DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $(cat "$STATE_DIR/packages.installed") >/dev/null
        fi
        rm -f "$STATE_DIR/packages.installed" "$STATE_DIR/packages.before" "$STATE_DIR/packages.done"
    fi
    rm -f "$STATE_DIR/up"
    if [ "${KEEP_PACKAGES:-0}" = 1 ] && recorded packages.installed; then
        log "undone (packages kept, recorded in $STATE_DIR/packages.installed)"
    else
        rm -rf "$STATE_DIR"
        log "undone"
    fi
}

status() {
    echo "state dir: $STATE_DIR $( [ -e "$STATE_DIR/up" ] && echo '(up)' || echo '(not up)')"
    [ -d "$STATE_DIR" ] && ls "$STATE_DIR"
    echo "mm-delay: $(command -v mm-delay || echo absent)"
    echo "player tools: ffmpeg $(command -v ffmpeg || echo absent), npm $(command -v npm || echo absent), chromium $(command -v chromium || echo absent)"
    echo "ip_forward: $(sysctl -n net.ipv4.ip_forward)"
    echo "iptables alternative: $(update-alternatives --query iptables 2>/dev/null | awk '/^Value:/{print $2}')"
    echo "user $EMU_USER: $(id "$EMU_USER" 2>/dev/null || echo absent)"
    if command -v iptables >/dev/null && iptables -C "${RULE[@]}" 2>/dev/null; then
        echo "FORWARD rule: present"
    else
        echo "FORWARD rule: absent"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
