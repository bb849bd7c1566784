#!/usr/bin/env bash
# Runs "$@" against a throwaway PostgreSQL cluster on 127.0.0.1 and exports its URL as
# NASFORGE_TEST_PG_URL. initdb/pg_ctl refuse root, so as root the cluster runs as `postgres`.
# Tests run it with fsync=off (speed); NASFORGE_PG_FSYNC=on keeps PostgreSQL's default (benches).
set -euo pipefail
FSYNC_OPT="-c fsync=off"
[ "${NASFORGE_PG_FSYNC:-off}" = on ] && FSYNC_OPT=""
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "pg_harness: PostgreSQL server not installed (deploy/install-deps.sh)"; exit 1; }
DIR=$(mktemp -d /tmp/nasforge-pg.XXXXXX)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
cleanup() { as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log"; exit 1; }
started=0
for _ in $(seq 20); do
  PORT=$(( 20000 + RANDOM % 40000 ))
  if as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -w -t 30 -l "$DIR/server.log" \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR $FSYNC_OPT" start >/dev/null 2>&1; then
    started=1; break
  fi
done
[ "$started" -eq 1 ] || { echo "pg_harness: could not start PostgreSQL"; cat "$DIR/server.log"; exit 1; }
export NASFORGE_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
# Fault tests stop and start this cluster: `$NASFORGE_TEST_PG_CTL stop|start`.
cat >"$DIR/ctl.sh" <<CTL
#!/usr/bin/env bash
# Stops (fast: sessions are terminated) or starts the test cluster with its original settings.
set -euo pipefail
as_pg() { if [ "\$(id -u)" -eq 0 ]; then runuser -u postgres -- "\$@"; else "\$@"; fi; }
case "\$1" in
  stop) as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null ;;
  start) as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -w -t 30 -l "$DIR/server.log" \\
           -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR $FSYNC_OPT" start >/dev/null ;;
  *) echo "usage: ctl.sh stop|start"; exit 2 ;;
esac
CTL
chmod 755 "$DIR/ctl.sh"
export NASFORGE_TEST_PG_CTL="$DIR/ctl.sh"
export NASFORGE_TEST_PG_PORT="$PORT"
set +e
"$@"
rc=$?
exit $rc
