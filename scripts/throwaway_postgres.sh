#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `eval "$(scripts/throwaway_postgres.sh start DIR)"`
# makes one under DIR on a free local port and prints the exports that point the tests at it
# (CIBOARD_TEST_POSTGRES_URL, a database the tests create their own databases from);
# `scripts/throwaway_postgres.sh stop DIR` stops it and removes DIR. PostgreSQL refuses to run as
# root, so as root the cluster belongs to `nobody`.
set -euo pipefail
action=${1:?start or stop}
dir=${2:?a folder for the cluster}
bin=${POSTGRES_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bin/initdb" ] || { echo "no PostgreSQL binaries (set POSTGRES_BIN)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

case "$action" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown nobody "$dir"
    # C collation: text sorts by code point, as SQLite's does, so both app databases order alike.
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null
    echo "export CIBOARD_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "start or stop" >&2; exit 2
    ;;
esac
