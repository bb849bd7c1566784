#!/usr/bin/env bash
# Multi-host, for real: five hosts made of Linux network namespaces joined by veth links to a
# bridge (itself in a namespace of its own, so nothing touches this machine's network), on a
# private subnet that exists only inside them:
#
#   pg 10.77.0.10       PostgreSQL (password auth over TCP)
#   ctl 10.77.0.11      nasforge-controller: TLS, tokens, /metrics over HTTPS (the deployment's
#                       defaults, as deploy/systemd and deploy/k8s run it)
#   w1..w3 10.77.0.21-23  tabular workers (NAS-Bench-201 table), each with a worker token
#
# Job A (24 trials) runs to completion over that network. Job B (30 trials, each held 1 s as if
# training): once worker 2 holds a lease, its link is cut (the switch port goes down) mid-trial;
# the lease expires, the trial is trained again by another worker, and the job completes with
# every trial succeeded exactly once, no architecture twice, and the cut trial finished by
# another worker. Then the link comes back and worker 2's late report is refused, not counted.
#
# Needs root (namespaces); anything else is skipped with exit 77 (CTest: SKIP_RETURN_CODE).
# Usage: multihost_test.sh SOURCE_DIR CONTROLLER_BIN WORKER_BIN CLI_BIN
set -euo pipefail
SRC="$1"; CONTROLLER="$2"; WORKER="$3"; CLI="$4"
if [ "$(id -u)" -ne 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "SKIP: needs root for network namespaces"; exit 77
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "FAIL: PostgreSQL server not installed (deploy/install-deps.sh)"; exit 1; }

ID="nf$$"            # namespace and interface names unique to this run
SW="$ID-sw"
NET=10.77.0
DIR=$(mktemp -d /tmp/nasforge-multihost.XXXXXX)
chmod 755 "$DIR"
pass=0; failed=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

cleanup() {
  set +e
  for ns in "$ID-w1" "$ID-w2" "$ID-w3" "$ID-ctl"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9
  done
  ip netns exec "$ID-pg" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/pg" -m immediate stop >/dev/null 2>&1
  ip netns pids "$ID-pg" 2>/dev/null | xargs -r kill -9
  for ns in pg ctl w1 w2 w3 sw; do ip netns del "$ID-$ns" 2>/dev/null; done
  if [ "$failed" -ne 0 ] || [ "$pass" -eq 0 ]; then
    for f in controller.log w1.log w2.log w3.log pg.log; do
      [ -f "$DIR/$f" ] && { echo "--- tail of $f"; tail -15 "$DIR/$f"; }
    done
  fi
  rm -rf "$DIR"
}
trap cleanup EXIT

# --- the network ------------------------------------------------------------------------------
ip netns add "$SW"
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
ip -n "$SW" link set lo up
host() { # NAME ADDRESS: a namespace with eth0 at ADDRESS, its peer on the switch as v-NAME
  local ns="$ID-$1"
  ip netns add "$ns"
  ip link add "$ID$1" type veth peer name eth0 netns "$ns"
  ip link set "$ID$1" netns "$SW"
  ip -n "$SW" link set "$ID$1" name "v-$1"
  ip -n "$SW" link set "v-$1" master br0
  ip -n "$SW" link set "v-$1" up
  ip -n "$ns" addr add "$2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}
host pg "$NET.10"; host ctl "$NET.11"; host w1 "$NET.21"; host w2 "$NET.22"; host w3 "$NET.23"

# --- PostgreSQL on its own host ---------------------------------------------------------------
chown postgres "$DIR"
echo pg-admin-pw >"$DIR/pgpw" && chmod 644 "$DIR/pgpw"
runuser -u postgres -- "$PGBIN/initdb" -D "$DIR/pg" -A scram-sha-256 -U postgres \
  --pwfile="$DIR/pgpw" >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log"; exit 1; }
echo "host all all $NET.0/24 scram-sha-256" >>"$DIR/pg/pg_hba.conf"
ip netns exec "$ID-pg" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/pg" -w -t 30 -l "$DIR/pg.log" \
  -o "-c listen_addresses=$NET.10 -p 5432 -k $DIR" start >/dev/null
ip netns exec "$ID-pg" env PGPASSWORD=pg-admin-pw psql -q -h "$NET.10" -U postgres -d postgres \
  -c "CREATE ROLE nasforge LOGIN PASSWORD 'store-pw'" -c "CREATE DATABASE nasforge OWNER nasforge"
STORE="postgresql://nasforge:store-pw@$NET.10:5432/nasforge"

# --- TLS and tokens, as deploy/README.md makes them -----------------------------------------------
EC="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
(cd "$DIR" && openssl req -x509 $EC -keyout ca.key -out ca.pem -days 2 -subj /CN=nasforge-test-ca &&
  openssl req $EC -keyout ctl.key -out ctl.csr -subj /CN=controller &&
  echo "subjectAltName=IP:$NET.11" >ctl.ext &&
  openssl x509 -req -in ctl.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ctl.ext \
    -out ctl.pem) >/dev/null 2>&1
"$CLI" token create --file "$DIR/tokens" --name ops --role admin >"$DIR/admin.token"
for w in 1 2 3; do "$CLI" token create --file "$DIR/tokens" --name "w$w" --role worker >"$DIR/w$w.token"; done

# --- the controller and the workers, each on its host -----------------------------------------------
# The store URL (with its password) through the environment, as the deployments pass it.
NASFORGE_STORE="$STORE" ip netns exec "$ID-ctl" "$CONTROLLER" --listen "$NET.11:50051" \
  --tls-cert "$DIR/ctl.pem" --tls-key "$DIR/ctl.key" --auth-tokens "$DIR/tokens" \
  --metrics-listen "$NET.11:9464" --metrics-tls-cert "$DIR/ctl.pem" --metrics-tls-key "$DIR/ctl.key" \
  >"$DIR/controller.log" 2>&1 &
cli() { ip netns exec "$ID-w1" "$CLI" --controller "$NET.11:50051" --tls-ca "$DIR/ca.pem" \
  --token-file "$DIR/admin.token" "$@"; }
for _ in $(seq 100); do cli jobs >/dev/null 2>&1 && break; sleep 0.2; done
cli jobs >/dev/null && ok "the CLI on w1 calls the controller over TLS with a token" || bad "controller unreachable"
grep -q "event=controller_started .*store=postgresql" "$DIR/controller.log" \
  && ok "the controller uses PostgreSQL on the pg host (URL from \$NASFORGE_STORE)" \
  || bad "the controller is not on the PostgreSQL store"
ip netns exec "$ID-w3" curl -sf --cacert "$DIR/ca.pem" "https://$NET.11:9464/metrics" | grep -q nasforge_build_info \
  && ok "/metrics over HTTPS from another host" || bad "/metrics not reachable over HTTPS"
ip netns exec "$ID-w3" curl -s --max-time 5 "http://$NET.11:9464/metrics" | grep -q nasforge_build_info \
  && bad "/metrics answered plain HTTP" || ok "no plain HTTP on the metrics port"

for w in 1 2 3; do
  ip netns exec "$ID-w$w" "$WORKER" --controller "$NET.11:50051" --tls-ca "$DIR/ca.pem" \
    --token-file "$DIR/w$w.token" --worker-id "host-w$w" --backend tabular \
    --table "$SRC/bench/data/nb201_cifar10.csv" --fitness-column c10_val_200ep \
    --seeds-column c10_val_200ep_seeds --tabular-trial-seconds 1 \
    --metrics-listen "" >"$DIR/w$w.log" 2>&1 &
done

spec() { # NAME TRIALS
  sed -e "s/^name: .*/name: $1/" -e "s/max_trials: 300/max_trials: $2/" \
    -e "s/max_parallel_trials: 4/max_parallel_trials: 3/" -e "s/lease_seconds: 30/lease_seconds: 5/" \
    "$SRC/search_spaces/examples/nb201_tabular.yaml" >"$DIR/$1.yaml"
  echo "$DIR/$1.yaml"
}
field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_done() { # JOB TIMEOUT: waits for a terminal state (the CLI's watch ends with the job)
  timeout "$2" bash -c "until cli status $1 --json 2>/dev/null | grep -q '\"state\": \"JOB_\(SUCCEEDED\|FAILED\|CANCELLED\)\"'; do sleep 0.5; done" 2>/dev/null || true
}
export -f cli; export ID NET CLI DIR
expect_succeeded() { # JOB TRIALS WHAT: the job SUCCEEDED with exactly TRIALS trials succeeded
  local st; st=$(cli status "$1" --json)
  if [ "$(echo "$st" | field 'd["state"]')" = JOB_SUCCEEDED ] &&
     [ "$(echo "$st" | field 'd["counts"].get("succeeded",0)')" = "$2" ]; then
    ok "$3: $2 trials succeeded"
  else
    bad "$3: $(echo "$st" | field 'd["state"], d.get("counts")')"
  fi
}

# --- job A: completes over the network ---------------------------------------------------------
A=$(cli submit "$(spec mh-a 24)")
wait_done "$A" 120
expect_succeeded "$A" 24 "job A, over the network"
cli candidates "$A" --json | field 'sorted(set(t["worker_id"] for t in d["trials"]))' | grep -q "host-w3" \
  && ok "job A: trials trained on several hosts" || bad "job A: not every host trained"

# --- job B: worker 2's link is cut mid-trial ----------------------------------------------------
B=$(cli submit "$(spec mh-b 30)")
cut_trial=""
for _ in $(seq 200); do
  cut_trial=$(cli candidates "$B" --json 2>/dev/null | field \
    '",".join(t.get("id","0") for t in d.get("trials",[]) if t["state"]=="TRIAL_RUNNING" and t.get("worker_id")=="host-w2")' || true)
  [ -n "$cut_trial" ] && break
  sleep 0.1
done
[ -n "$cut_trial" ] || bad "worker 2 never held a lease in job B"
cut_trial=${cut_trial%%,*}
ip -n "$SW" link set "v-w2" down
echo "cut: w2's link down while it trains trial $cut_trial of $B"
wait_done "$B" 180
expect_succeeded "$B" 30 "job B, after the cut"
st=$(cli status "$B" --json)
cands=$(cli candidates "$B" --json)
[ "$(echo "$cands" | field 'len(d["trials"]) - len(set(t["arch_hash"] for t in d["trials"]))')" = 0 ] \
  && ok "job B: no architecture trained twice" || bad "job B: duplicate architectures"
who=$(echo "$cands" | field "[(t['state'], t['worker_id'], t['attempts']) for t in d['trials'] if t.get('id','0')=='$cut_trial'][0]")
case "$who" in
  *TRIAL_SUCCEEDED*host-w2*) bad "trial $cut_trial counted from the cut-off worker: $who" ;;
  *TRIAL_SUCCEEDED*) ok "trial $cut_trial, cut mid-training, finished by another worker: $who" ;;
  *) bad "trial $cut_trial: $who" ;;
esac
grep -q "event=lease_lost.*trial=$cut_trial " "$DIR/controller.log" \
  && ok "the controller logged the expired lease" || bad "no lease expiry in the controller log"

# --- the link comes back: the late report is refused, nothing changes ---------------------------
before=$(echo "$st" | field 'd["counts"]')
ip -n "$SW" link set "v-w2" up
refused=""
for _ in $(seq 100); do
  refused=$(grep -E "level=warn event=(trial_reported|lease_lost) .*trial=$cut_trial |event=trial_dropped .*trial=$cut_trial " "$DIR/w2.log" || true)
  [ -n "$refused" ] && break
  sleep 0.2
done
[ -n "$refused" ] && ok "w2, back on the network, was told its lease is gone: ${refused:0:160}" \
  || bad "w2 never heard that its lease of trial $cut_trial is gone"
after=$(cli status "$B" --json | field 'd["counts"]')
[ "$before" = "$after" ] && ok "w2's late report changed nothing ($after)" || bad "counts moved: $before -> $after"

echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
