#!/usr/bin/env bash
# Installs Debian's PostgreSQL when missing and starts a throw-away cluster on 127.0.0.1.
# Prints the URL to export as SYNERGIE_TEST_POSTGRES_URL.
set -euo pipefail
port="${PGPORT_SYNERGIE:-55432}"
dir="${PGDATA_SYNERGIE:-/tmp/synergie-pg-$port}"

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# PostgreSQL refuses to run as root: run it as the postgres system user when we are root.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
  as_pg=(runuser -u postgres --)
fi

if ! "${as_pg[@]}" "$bindir/pg_isready" -h 127.0.0.1 -p "$port" -q 2>/dev/null; then
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  "${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U synergie --auth=trust -E UTF8 --locale=C.UTF-8 >&2
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2
fi
echo "postgresql+psycopg://synergie@127.0.0.1:$port/postgres"
