#!/usr/bin/env bash
# Make sure the local PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) that the
# tests, the benchmarks and `telehub serve` against real services use are up.
#
#   infra/services/ensure-services.sh            # both
#   infra/services/ensure-services.sh postgres   # just one of them
#   infra/services/ensure-services.sh redis
#
# Idempotent: a service that already answers is left alone (no install, no restart,
# no configuration change). A missing one is installed from Debian's packages and
# started; only a PostgreSQL that this script installed or whose cluster it created
# gets trust authentication for local connections (a dev/CI database, never production).
# Runs as root without sudo (as another user, sudo is used when present).
#
# Environment:
#   ENSURE_SERVICES_TIMEOUT  seconds to wait for each service to answer (default 60)
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
TIMEOUT="${ENSURE_SERVICES_TIMEOUT:-60}"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'ensure-services: %s\n' "$*"; }
die() { printf 'ensure-services: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null
}

# A TCP connection to host:port succeeds (bash's /dev/tcp; no client tools needed).
tcp_open() {
    timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# Wait until "$@" succeeds, at most TIMEOUT seconds.
wait_for() {
    local what=$1; shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.5
    done
    log "$what is ready"
}

# ---------------------------------------------------------------- PostgreSQL

pg_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -h "$PG_HOST" -p "$PG_PORT" -t 2 -q
    else
        tcp_open "$PG_HOST" "$PG_PORT"
    fi
}

# Newest PostgreSQL major version with a cluster directory, if any.
pg_version() {
    ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1
}

pg_trust_local() {
    local hba=$1
    if grep -qE '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        return 0
    fi
    log "configuring trust authentication for local connections in $hba (dev/CI only)"
    local tmp
    tmp=$(mktemp)
    {
        echo "# Added by Telehub's infra/services/ensure-services.sh: a dev/CI server trusts local connections."
        echo "local   all   all                  trust"
        echo "host    all   all   127.0.0.1/32   trust"
        echo "host    all   all   ::1/128        trust"
        cat "$hba"
    } >"$tmp"
    as_root cp "$tmp" "$hba"
    rm -f "$tmp"
}

ensure_postgres() {
    if pg_ready; then
        log "PostgreSQL already accepting connections on $PG_HOST:$PG_PORT"
        return 0
    fi
    log "PostgreSQL not answering on $PG_HOST:$PG_PORT; bringing it up"

    local ours=0
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
        apt_install postgresql
        ours=1
    fi

    local ver
    ver=$(pg_version)
    if [ -z "$ver" ]; then
        ver=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
        [ -n "$ver" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
        log "creating cluster $ver/main"
        as_root pg_createcluster --port "$PG_PORT" "$ver" main >/dev/null
        ours=1
    fi

    if [ "$ours" -eq 1 ]; then
        pg_trust_local "/etc/postgresql/$ver/main/pg_hba.conf"
    fi

    # The package's own start-up (or someone else) may have started it meanwhile;
    # a server that is still starting up is waited for, not started twice.
    if pg_ready || as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main status >/dev/null 2>&1; then
        if [ "$ours" -eq 1 ]; then
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true
        fi
    else
        log "starting PostgreSQL cluster $ver/main"
        if ! as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start; then
            tail -n 20 "/var/log/postgresql/postgresql-$ver-main.log" 2>/dev/null >&2 || true
            die "pg_ctlcluster $ver main start failed"
        fi
    fi

    if ! wait_for "PostgreSQL on $PG_HOST:$PG_PORT" pg_ready; then
        tail -n 20 "/var/log/postgresql/postgresql-$ver-main.log" 2>/dev/null >&2 || true
        die "PostgreSQL did not accept connections on $PG_HOST:$PG_PORT within ${TIMEOUT}s"
    fi
}

# --------------------------------------------------------------------- Redis

redis_ready() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
    else
        # Speak RESP by hand: PING -> +PONG
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 &&
                           IFS= read -r line <&3 && [[ $line == "+PONG"* ]]' \
            "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
    fi
}

ensure_redis() {
    if redis_ready; then
        log "Redis already answering PING on $REDIS_HOST:$REDIS_PORT"
        return 0
    fi
    log "Redis not answering on $REDIS_HOST:$REDIS_PORT; bringing it up"

    if ! command -v redis-server >/dev/null 2>&1; then
        apt_install redis-server
    fi

    # The package's own start-up may have started it meanwhile.
    if ! redis_ready; then
        as_root mkdir -p /var/lib/redis /var/log/redis
        log "starting redis-server"
        if ! as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
                --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log; then
            tail -n 20 /var/log/redis/ci.log 2>/dev/null >&2 || true
            die "redis-server failed to start"
        fi
    fi

    if ! wait_for "Redis on $REDIS_HOST:$REDIS_PORT" redis_ready; then
        tail -n 20 /var/log/redis/ci.log 2>/dev/null >&2 || true
        die "Redis did not answer PING on $REDIS_HOST:$REDIS_PORT within ${TIMEOUT}s"
    fi
}

# ---------------------------------------------------------------------- main

services=("$@")
[ "${#services[@]}" -gt 0 ] || services=(postgres redis)
for service in "${services[@]}"; do
    case "$service" in
        postgres|postgresql) ensure_postgres ;;
        redis) ensure_redis ;;
        *) die "unknown service '$service' (expected: postgres, redis)" ;;
    esac
done
