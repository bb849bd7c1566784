#!/usr/bin/python3
"""The Kubernetes manifests, rendered offline and checked as a reviewer would.

Renders each overlay of deploy/k8s (default, gpu, external-postgres) with `kubectl kustomize` and asserts: every workload
container names an image, CPU and memory requests and a memory limit, runs as non-root without
privilege escalation; the controller listens with TLS and tokens (no --insecure, no plain-text
metrics anywhere), has readiness and liveness probes through `nasforge health` over TLS, and
mounts its TLS and token Secrets; workers reach the controller by its Service with TLS and a
worker token; every Service is ClusterIP (nothing exposed outside the cluster); NetworkPolicies
deny by default and let only the controller reach PostgreSQL; the submit Job reads a spec from
the ConfigMap, which is the shipped example; the GPU overlay asks for nvidia.com/gpu; the
external-postgres overlay has no PostgreSQL. Then runs deploy/k8s/make-secrets.sh and checks
that every Secret and key the manifests mount is one it makes, and that the controller's
certificate names localhost (for the probes) and the Service; and that deploy/compose uses only
secrets make-secrets.sh writes, publishes nothing beyond loopback, and its Prometheus config
passes promtool.

Usage: k8s_test.py SOURCE_DIR CLI_BIN
"""
import os
import subprocess
import sys
import tempfile

import yaml

SRC, CLI = sys.argv[1:3]
K8S = os.path.join(SRC, "deploy", "k8s")
failures = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)


def render(path):
    r = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"kubectl kustomize {path}: {r.stderr}")
        return []
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def by(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def pod_spec(d):
    return d["spec"]["template"]["spec"] if d["kind"] != "Pod" else d["spec"]


def containers(docs):
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            for c in pod_spec(d)["containers"]:
                yield d, c


def secret_refs(docs):
    """(secret, key or None) for every Secret a workload mounts or reads."""
    refs = set()
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        spec = pod_spec(d)
        for v in spec.get("volumes", []):
            if "secret" in v:
                items = v["secret"].get("items")
                for it in items or [{"key": None}]:
                    refs.add((v["secret"]["secretName"], it["key"]))
        for c in spec["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
    return refs


base = render(os.path.join(K8S, "overlays", "default"))
gpu = render(os.path.join(K8S, "overlays", "gpu"))
ext = render(os.path.join(K8S, "overlays", "external-postgres"))

for name, docs in (("default", base), ("gpu", gpu), ("external-postgres", ext)):
    check(len(docs) > 5, f"{name}: rendered {len(docs)} objects")
    for d in docs:
        check(d["metadata"].get("namespace") == "nasforge" or d["kind"] == "Namespace",
              f"{name}: {d['kind']}/{d['metadata']['name']} not in namespace nasforge")
    for d, c in containers(docs):
        where = f"{name}: {d['kind']}/{d['metadata']['name']} container {c['name']}"
        check(bool(c.get("image")), f"{where}: no image")
        req = c.get("resources", {}).get("requests", {})
        check("cpu" in req and "memory" in req, f"{where}: no cpu/memory requests")
        check("memory" in c.get("resources", {}).get("limits", {}), f"{where}: no memory limit")
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation allowed")
        check(pod_spec(d).get("securityContext", {}).get("runAsNonRoot") is True, f"{where}: may run as root")
        args = " ".join(c.get("args", []) + c.get("command", []))
        check("--insecure" not in args and "--metrics-insecure" not in args, f"{where}: plain text asked for: {args}")
        if "--metrics-listen=0.0.0.0" in args:
            check("--metrics-tls-cert=" in args and "--metrics-tls-key=" in args, f"{where}: /metrics without TLS")
        # Every mounted volume exists.
        vols = {v["name"] for v in pod_spec(d).get("volumes", [])}
        for m in c.get("volumeMounts", []):
            check(m["name"] in vols or any(t["metadata"]["name"] == m["name"] for t in d["spec"].get("volumeClaimTemplates", [])),
                  f"{where}: mounts unknown volume {m['name']}")
    for s in by(docs, "Service"):
        check(s["spec"].get("type", "ClusterIP") == "ClusterIP", f"{name}: Service {s['metadata']['name']} exposed as {s['spec'].get('type')}")
        check(all("nodePort" not in p for p in s["spec"]["ports"]), f"{name}: Service {s['metadata']['name']} has a nodePort")

# The controller.
ctl = by(base, "Deployment", "nasforge-controller")
check(len(ctl) == 1, "base: one controller Deployment")
if ctl:
    d = ctl[0]
    check(d["spec"]["replicas"] == 1 and d["spec"]["strategy"]["type"] == "Recreate", "controller: one replica, Recreate")
    c = pod_spec(d)["containers"][0]
    args = c["args"]
    for flag in ("--tls-cert=", "--tls-key=", "--auth-tokens=", "--listen=0.0.0.0:50051"):
        check(any(a.startswith(flag) for a in args), f"controller: missing {flag}")
    check(not any(a.startswith("--store") for a in args), "controller: the store URL (a password) is in its arguments")
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NASFORGE_STORE", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "nasforge-store",
          "controller: NASFORGE_STORE does not come from the nasforge-store Secret")
    for probe in ("readinessProbe", "livenessProbe"):
        cmd = c.get(probe, {}).get("exec", {}).get("command", [])
        check(len(cmd) > 1 and cmd[0].endswith("/nasforge") and cmd[1] == "health"
              and any(x.startswith("--tls-ca=") for x in cmd), f"controller: {probe} is not `nasforge health` over TLS: {cmd}")
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    check("/etc/nasforge/tls" in mounts and "/etc/nasforge/tokens" in mounts, "controller: TLS and tokens not mounted")
    ann = d["spec"]["template"]["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/scheme") == "https", "controller: no HTTPS scrape annotations")

# Workers.
w = by(base, "Deployment", "nasforge-worker")
check(len(w) == 1, "base: one worker Deployment")
if w:
    c = pod_spec(w[0])["containers"][0]
    args = " ".join(c["args"])
    check("--controller=nasforge-controller:50051" in args and "--tls-ca=" in args and "--token-file=" in args,
          f"worker: does not reach the controller Service with TLS and a token: {args}")
    check(pod_spec(w[0]).get("terminationGracePeriodSeconds", 30) >= 30, "worker: no time to hand its trial back")
g = by(gpu, "Deployment", "nasforge-worker-gpu")
check(len(g) == 1 and pod_spec(g[0])["containers"][0]["resources"]["limits"].get("nvidia.com/gpu") == 1,
      "gpu overlay: no worker with nvidia.com/gpu")
if g and w:
    sel_g = g[0]["spec"]["selector"]["matchLabels"]
    sel_c = w[0]["spec"]["selector"]["matchLabels"]
    check(sel_g != sel_c and not (set(sel_c.items()) <= set(g[0]["spec"]["template"]["metadata"]["labels"].items())),
          "gpu overlay: the CPU workers' selector also matches GPU pods")

# PostgreSQL and NetworkPolicies.
pg = by(base, "StatefulSet", "nasforge-postgres")
check(len(pg) == 1 and pg[0]["spec"].get("volumeClaimTemplates"), "base: PostgreSQL StatefulSet with a PVC")
check(not by(ext, "StatefulSet"), "external-postgres: still has a StatefulSet")
pols = {p["metadata"]["name"]: p for p in by(base, "NetworkPolicy")}
deny = [p for p in pols.values() if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")]
check(bool(deny), "base: no default-deny NetworkPolicy")
pgpol = pols.get("nasforge-postgres")
check(pgpol is not None and [f["podSelector"]["matchLabels"] for r in pgpol["spec"]["ingress"] for f in r["from"]]
      == [{"app.kubernetes.io/name": "nasforge-controller"}], "base: PostgreSQL reachable from more than the controller")

# The submit Job and its spec.
job = by(base, "Job")
cm = by(base, "ConfigMap")
check(len(job) == 1 and len(cm) == 1, "base: one submit Job and one job-spec ConfigMap")
if job and cm:
    args = pod_spec(job[0])["containers"][0]["args"]
    check(args[0] == "submit" and any(a.startswith("--idempotency-key=") for a in args), f"submit Job: {args}")
    spec_file = os.path.basename(args[1])
    shipped = open(os.path.join(SRC, "search_spaces", "examples", spec_file)).read()
    check(cm[0]["data"].get(spec_file) == shipped, f"ConfigMap's {spec_file} differs from search_spaces/examples")
    vols = {v["name"]: v for v in pod_spec(job[0])["volumes"]}
    check(any(v.get("configMap", {}).get("name") == cm[0]["metadata"]["name"] for v in vols.values()),
          "submit Job does not mount the (hashed) ConfigMap")

# make-secrets.sh makes every Secret and key the manifests use.
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "secrets")
    r = subprocess.run([os.path.join(K8S, "make-secrets.sh"), out], capture_output=True, text=True,
                       env=dict(os.environ, NASFORGE_CLI=CLI))
    check(r.returncode == 0, f"make-secrets.sh: {r.stdout}{r.stderr}")
    if r.returncode == 0:
        made = {s["metadata"]["name"]: s for s in yaml.safe_load_all(open(os.path.join(out, "secrets.yaml"))) if s}
        for docs in (base, gpu, ext):
            for name, key in sorted(secret_refs(docs), key=str):
                check(name in made, f"Secret {name} is mounted but make-secrets.sh does not make it")
                if name in made and key:
                    check(key in made[name].get("data", {}), f"Secret {name} has no key {key}")
        san = subprocess.run(["openssl", "x509", "-in", os.path.join(out, "controller.crt"), "-noout", "-ext", "subjectAltName"],
                             capture_output=True, text=True).stdout
        check("DNS:localhost" in san and "DNS:nasforge-controller" in san, f"controller certificate names: {san}")
        check(oct(os.stat(out).st_mode & 0o777) == "0o700", "secrets directory is not private")

        # deploy/compose: every secret file is one make-secrets.sh writes, nothing published
        # beyond loopback, and its Prometheus config (with the shipped rules) passes promtool.
        compose = yaml.safe_load(open(os.path.join(SRC, "deploy", "compose", "compose.yaml")))
        for name, sec in compose["secrets"].items():
            check(os.path.exists(os.path.join(out, os.path.basename(sec["file"]))),
                  f"compose secret {name}: make-secrets.sh writes no {sec['file']}")
        for name, svc in compose["services"].items():
            check(bool(svc.get("image")), f"compose service {name}: no image")
            for p in svc.get("ports", []):
                check(str(p).startswith("127.0.0.1:"), f"compose service {name} publishes {p} beyond loopback")
            for sref in svc.get("secrets", []):
                check(sref in compose["secrets"], f"compose service {name}: unknown secret {sref}")
            cmd = " ".join(svc.get("command", []) if isinstance(svc.get("command"), list) else [str(svc.get("command", ""))])
            check("--insecure" not in cmd and "--metrics-insecure" not in cmd, f"compose service {name}: plain text")
        prom = open(os.path.join(SRC, "deploy", "compose", "prometheus.yml")).read()
        prom = prom.replace("/etc/prometheus/ca.crt", os.path.join(out, "ca.crt"))
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write(prom)
        for rules in ("rules.yml", "alerts.yml"):
            with open(os.path.join(SRC, "dashboards", rules)) as src, open(os.path.join(tmp, rules), "w") as dst:
                dst.write(src.read())
        r = subprocess.run(["promtool", "check", "config", os.path.join(tmp, "prometheus.yml")],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"promtool check config deploy/compose/prometheus.yml: {r.stdout}{r.stderr}")

print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
