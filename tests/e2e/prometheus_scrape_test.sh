#!/usr/bin/env bash
# A real Prometheus server (Debian's `prometheus`) scrapes a real controller's /metrics over
# HTTPS (a CA and certificate made here with openssl, as the deployment files do): the target
# must come up and nasforge_controller_* series must be queryable through Prometheus's API.
# Usage: prometheus_scrape_test.sh CONTROLLER_BIN
set -euo pipefail
CONTROLLER="$1"
command -v prometheus >/dev/null || { echo "FAIL: prometheus not installed (deploy/install-deps.sh)"; exit 1; }
DIR=$(mktemp -d /tmp/nasforge-prom.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

free_port() { # a port nobody listens on (bash's /dev/tcp connect fails)
  while :; do
    p=$(( 20000 + RANDOM % 40000 ))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
}
EC="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
(cd "$DIR" && openssl req -x509 $EC -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca &&
  openssl req $EC -keyout m.key -out m.csr -subj /CN=controller &&
  echo "subjectAltName=IP:127.0.0.1" >m.ext &&
  openssl x509 -req -in m.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile m.ext \
    -out m.pem) >/dev/null 2>&1
MPORT=$(free_port)
"$CONTROLLER" --listen 127.0.0.1:0 --port-file "$DIR/port" --store "sqlite://$DIR/c.db" \
  --metrics-listen "127.0.0.1:$MPORT" --metrics-tls-cert "$DIR/m.pem" \
  --metrics-tls-key "$DIR/m.key" >"$DIR/controller.log" 2>&1 &
pids+=($!)
PPORT=$(free_port)
cat >"$DIR/prometheus.yml" <<CFG
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: nasforge-controller
    scheme: https
    tls_config: {ca_file: "$DIR/ca.pem"}
    static_configs: [{targets: ["127.0.0.1:$MPORT"]}]
CFG
promtool check config "$DIR/prometheus.yml" >/dev/null
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
  --web.listen-address="127.0.0.1:$PPORT" >"$DIR/prometheus.log" 2>&1 &
pids+=($!)

# Poll Prometheus's query API (bounded: 60 s) until it has scraped the controller.
query() { curl -sf "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" || true; }
for _ in $(seq 120); do
  if query 'up{job="nasforge-controller"}' | grep -q '"value":\[[0-9.]*,"1"\]'; then
    out=$(query 'nasforge_controller_trials')
    if echo "$out" | grep -q '"state":"queued"'; then
      echo "1 passed, 0 failed"
      exit 0
    fi
  fi
  sleep 0.5
done
echo "FAIL: Prometheus never scraped the controller"; tail -5 "$DIR/prometheus.log"; tail -5 "$DIR/controller.log"
echo "0 passed, 1 failed"
exit 1
