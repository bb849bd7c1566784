#!/usr/bin/env bash
# Makes every Secret the manifests mount, as one YAML file to `kubectl apply -f`: a CA and the
# controller's certificate (naming its Service and localhost, for the probes), the workers'
# metrics certificate, the token file with an admin, a worker and a submit token, and the
# PostgreSQL password and DSN. Keeps the private material in OUTDIR (mode 700): the admin token
# is OUTDIR/admin.token. Never commit OUTDIR.
# Usage: make-secrets.sh OUTDIR [--namespace NS] [--external-dsn URL]
# Needs openssl, kubectl (client only) and the nasforge CLI ($NASFORGE_CLI or on PATH).
set -euo pipefail
OUT="${1:?usage: make-secrets.sh OUTDIR [--namespace NS] [--external-dsn URL]}"; shift
NS=nasforge; DSN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) NS="$2"; shift 2 ;;
    --external-dsn) DSN="$2"; shift 2 ;;
    *) echo "make-secrets.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
CLI="${NASFORGE_CLI:-$(command -v nasforge || true)}"
[ -x "$CLI" ] || { echo "make-secrets.sh: set NASFORGE_CLI to the nasforge binary" >&2; exit 2; }
CLI="$(cd "$(dirname "$CLI")" && pwd)/$(basename "$CLI")"  # absolute: we cd to OUTDIR
mkdir -p "$OUT"; chmod 700 "$OUT"; cd "$OUT"
EC="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
openssl req -x509 $EC -keyout ca.key -out ca.crt -days 3650 -subj "/CN=nasforge-ca" 2>/dev/null
cert() { # NAME SANS
  openssl req $EC -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  echo "subjectAltName=$2" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
svc=nasforge-controller
cert controller "DNS:localhost,IP:127.0.0.1,DNS:$svc,DNS:$svc.$NS,DNS:$svc.$NS.svc,DNS:$svc.$NS.svc.cluster.local"
cert worker "DNS:nasforge-worker"
rm -f tokens
"$CLI" token create --file tokens --name ops --role admin >admin.token
"$CLI" token create --file tokens --name workers --role worker >worker.token
"$CLI" token create --file tokens --name k8s-submit --role submit >submit.token
PGPW=$(openssl rand -hex 24)
[ -n "$DSN" ] || DSN="postgresql://nasforge:$PGPW@nasforge-postgres:5432/nasforge"
k() { kubectl create secret generic "$1" --namespace "$NS" --dry-run=client -o yaml "${@:2}"; echo "---"; }
{
  k nasforge-tls --from-file=tls.crt=controller.crt --from-file=tls.key=controller.key --from-file=ca.crt=ca.crt
  k nasforge-worker-tls --from-file=tls.crt=worker.crt --from-file=tls.key=worker.key
  k nasforge-tokens --from-file=tokens=tokens
  k nasforge-worker-token --from-file=token=worker.token
  k nasforge-submit-token --from-file=token=submit.token
  k nasforge-postgres --from-literal=password="$PGPW"
  k nasforge-store --from-literal=url="$DSN"
} >secrets.yaml
# The same material as files, for deploy/compose (docker secrets).
printf '%s' "$PGPW" >pg.password
printf '%s' "$DSN" >store.url
chmod 600 ./*.key ./*.token tokens secrets.yaml pg.password store.url
echo "wrote $OUT/secrets.yaml (kubectl apply -f it); admin token: $OUT/admin.token"
