#!/usr/bin/env bash
# Validate the deploy files offline; exit non-zero on any failure.
#
#   deploy/kubernetes/validate.sh
#   K8S_VERSIONS="1.31.0 1.34.0" deploy/kubernetes/validate.sh
#
# 1. Every Kubernetes manifest here against the Kubernetes JSON schemas of
#    each version in K8S_VERSIONS, strictly (unknown fields fail), with the
#    kubernetes-validate PyPI package (installed when missing). Any warning
#    fails too (a kind without a schema would otherwise pass unchecked).
# 2. kustomization.yaml: kubernetes-validate has no schema for Kustomization,
#    so it is checked here instead: it lists exactly the manifests of this
#    directory; with kubectl or kustomize on PATH, its rendered output is
#    validated like the files.
# 3. What the schemas cannot see: the three regions' files are the same but
#    for the region, every node seeds from all six pod DNS names and
#    advertises its own, probes, security context, Secret keys.
# 4. deploy/compose/compose.yaml parses as YAML and has the expected services,
#    peers, volumes and secrets (with COMPOSE_SPEC_SCHEMA=compose-spec.json,
#    also against the Compose spec's schema; with `docker compose` on PATH,
#    also `docker compose config`); the Dockerfile has its user, ports and
#    HEALTHCHECK.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deploy=$(cd "$here/.." && pwd)
versions=${K8S_VERSIONS:-1.31.0 1.34.0}
fail=0

python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install --quiet 'kubernetes-validate==1.37.0'
fi
echo "== kubernetes-validate $(kubernetes-validate --version), Kubernetes ${versions}"

cd "$here"
manifests=()
for f in *.yaml; do
  [ "$f" = kustomization.yaml ] || manifests+=("$f")
done

# Runs kubernetes-validate --strict; fails on a non-zero exit or any WARN/ERROR line.
kv() { # version files...
  local v=$1 out rc=0
  shift
  out=$(kubernetes-validate --strict -k "$v" "$@" 2>&1) || rc=$?
  local passed
  passed=$(grep -c '^INFO .* passed for resource' <<<"$out" || true)
  if [ "$rc" != 0 ] || grep -qE '^(WARN|ERROR)' <<<"$out"; then
    grep -E '^(WARN|ERROR)' <<<"$out" >&2 || printf '%s\n' "$out" >&2
    echo "FAIL kubernetes-validate -k $v ($passed resources passed, exit $rc)" >&2
    return 1
  fi
  echo "ok   kubernetes-validate --strict -k $v: $passed resources in $# files"
}

echo "== manifests: ${manifests[*]}"
for v in $versions; do
  kv "$v" "${manifests[@]}" || fail=1
done

echo "== kustomization.yaml"
render=""
if command -v kubectl >/dev/null 2>&1; then
  render="kubectl kustomize"
elif command -v kustomize >/dev/null 2>&1; then
  render="kustomize build"
fi
if [ -n "$render" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if $render "$here" >"$tmp/rendered.yaml" 2>"$tmp/err"; then
    echo "ok   $render renders $(grep -c '^kind:' "$tmp/rendered.yaml") resources"
    for v in $versions; do
      kv "$v" "$tmp/rendered.yaml" || fail=1
    done
  else
    cat "$tmp/err" >&2
    echo "FAIL $render" >&2
    fail=1
  fi
else
  echo "skip rendering (no kubectl or kustomize on PATH)"
fi

echo "== semantic checks"
python3 - "$here" "$deploy" <<'PY' || fail=1
import os
import re
import sys

import yaml

here, deploy = sys.argv[1], sys.argv[2]
errors = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        errors.append(msg)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# --- kustomization.yaml -----------------------------------------------------
k = load_all(os.path.join(here, "kustomization.yaml"))[0]
check(k.get("kind") == "Kustomization", "kustomization.yaml: kind is not Kustomization")
listed = k.get("resources", [])
present = sorted(f for f in os.listdir(here) if f.endswith(".yaml") and f != "kustomization.yaml")
check(sorted(listed) == present, f"kustomization.yaml lists {sorted(listed)}, directory has {present}")
check(len(set(listed)) == len(listed), "kustomization.yaml lists a file twice")

# --- every object -------------------------------------------------------------
objs = {}
for f in present:
    for d in load_all(os.path.join(here, f)):
        key = (d["kind"], d["metadata"]["name"])
        check(key not in objs, f"{f}: {key} defined twice")
        objs[key] = (f, d)
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == "rescind", f"{f}: {key} not in namespace rescind")

REGIONS = ["eu", "us", "ap"]
NS = "rescind"
pod_dns = [f"rescind-{r}-{i}.rescind-{r}.{NS}.svc.cluster.local:7400" for r in REGIONS for i in (0, 1)]


def env_of(container):
    out = {}
    for e in container.get("env", []):
        v = e.get("value")
        if v is not None:
            # Kubernetes expands $(VAR) of earlier entries.
            v = re.sub(r"\$\((\w+)\)", lambda m: out.get(m.group(1), m.group(0)), v)
        elif "fieldRef" in e.get("valueFrom", {}):
            v = {"metadata.name": "$POD_NAME", "metadata.namespace": NS}[e["valueFrom"]["fieldRef"]["fieldPath"]]
        out[e["name"]] = v
    return out


check(("Namespace", NS) in objs, "no Namespace rescind")
sec = objs.get(("Secret", "rescind-secrets"), (None, {}))[1]
check(set(sec.get("stringData", {})) == {"cluster-key", "admin-token"}, "Secret rescind-secrets: keys must be cluster-key, admin-token")
check(all("REPLACE-ME" in v for v in sec.get("stringData", {}).values()), "Secret rescind-secrets: placeholders must stay marked REPLACE-ME in git")

texts = {}
for r in REGIONS:
    name = f"rescind-{r}"
    path = os.path.join(here, f"{r}.yaml")
    with open(path) as f:
        texts[r] = f.read()
    svc = objs.get(("Service", name), (None, None))[1]
    sts = objs.get(("StatefulSet", name), (None, None))[1]
    pdb = objs.get(("PodDisruptionBudget", name), (None, None))[1]
    check(svc and sts and pdb, f"{r}: needs Service, StatefulSet and PodDisruptionBudget {name}")
    if not (svc and sts and pdb):
        continue
    check(svc["spec"].get("clusterIP") == "None", f"{name}: Service not headless")
    check(svc["spec"].get("publishNotReadyAddresses") is True, f"{name}: publishNotReadyAddresses must be true")
    s = sts["spec"]
    check(s["serviceName"] == name, f"{name}: serviceName")
    check(s["replicas"] == 2, f"{name}: replicas")
    check(s.get("podManagementPolicy") == "Parallel", f"{name}: podManagementPolicy must be Parallel")
    sel = s["selector"]["matchLabels"]
    tl = s["template"]["metadata"]["labels"]
    check(all(tl.get(a) == b for a, b in sel.items()), f"{name}: selector does not match the pod labels")
    check(svc["spec"]["selector"] == sel, f"{name}: Service selector differs from the StatefulSet's")
    check(pdb["spec"].get("maxUnavailable") == 1 and pdb["spec"]["selector"]["matchLabels"] == sel, f"{name}: PDB")
    ann = s["template"]["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "7480"
          and ann.get("prometheus.io/path") == "/metrics", f"{name}: Prometheus annotations")
    pod = s["template"]["spec"]
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001
          and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: pod securityContext")
    (c,) = pod["containers"]
    csc = c.get("securityContext", {})
    check(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
          and csc.get("capabilities", {}).get("drop") == ["ALL"] and csc.get("runAsUser") == 10001,
          f"{name}: container securityContext")
    check(c.get("readinessProbe", {}).get("grpc", {}).get("port") == 7400, f"{name}: readinessProbe must be grpc 7400")
    check(c.get("readinessProbe", {}).get("grpc", {}).get("service") == "rescind.v1.Revocations",
          f"{name}: readinessProbe must ask for rescind.v1.Revocations (ready for checks)")
    for p in ("livenessProbe", "startupProbe"):
        g = c.get(p, {}).get("httpGet", {})
        check(g.get("path") == "/healthz" and g.get("port") == 7480, f"{name}: {p} must be GET /healthz on 7480")
    check(c.get("resources", {}).get("requests") and c.get("resources", {}).get("limits"), f"{name}: resources")
    env = env_of(c)
    check(env.get("RESCIND_REGION") == r, f"{name}: RESCIND_REGION")
    check(env.get("RESCIND_NODE_NAME") == "$POD_NAME", f"{name}: RESCIND_NODE_NAME must be the pod name")
    check(env.get("RESCIND_LISTEN") == "0.0.0.0:7400" and env.get("RESCIND_HTTP_LISTEN") == "0.0.0.0:7480", f"{name}: listen addresses")
    check(env.get("RESCIND_ADVERTISE_ADDR") == f"$POD_NAME.{name}.{NS}.svc.cluster.local:7400", f"{name}: RESCIND_ADVERTISE_ADDR {env.get('RESCIND_ADVERTISE_ADDR')}")
    peers = (env.get("RESCIND_PEERS") or "").split(",")
    check(peers == pod_dns, f"{name}: RESCIND_PEERS must be every pod's DNS name, got {peers}")
    for i in (0, 1):
        own = env["RESCIND_ADVERTISE_ADDR"].replace("$POD_NAME", f"{name}-{i}")
        check(own in peers, f"{name}-{i}: advertises {own}, not a seed spelling (a node drops only its own exact address)")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    check(mounts.get("data") == "/var/lib/rescind", f"{name}: data volume not at /var/lib/rescind")
    check([t["metadata"]["name"] for t in s.get("volumeClaimTemplates", [])] == ["data"], f"{name}: volumeClaimTemplates")
    files = {env.get("RESCIND_CLUSTER_KEY_FILE"), env.get("RESCIND_ADMIN_TOKEN_FILE")}
    secret_mount = mounts.get("secrets")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    check(vols.get("secrets", {}).get("secret", {}).get("secretName") == "rescind-secrets", f"{name}: secrets volume")
    check(files == {f"{secret_mount}/cluster-key", f"{secret_mount}/admin-token"}, f"{name}: secret file paths {files}")
    tls_mount = mounts.get("peer-tls")
    check(vols.get("peer-tls", {}).get("secret", {}).get("secretName") == "rescind-peer-tls", f"{name}: peer-tls volume")
    check((env.get("RESCIND_PEER_TLS_CERT"), env.get("RESCIND_PEER_TLS_KEY"), env.get("RESCIND_PEER_TLS_CA"))
          == (f"{tls_mount}/tls.crt", f"{tls_mount}/tls.key", f"{tls_mount}/ca.crt"), f"{name}: peer mTLS files")
def unregioned(text):
    return re.sub(r"\b(eu|us|ap)\b", "R", text)


for r in REGIONS[1:]:
    check(unregioned(texts[r]) == unregioned(texts["eu"]), f"{r}.yaml differs from eu.yaml other than in the region")

svc = objs.get(("Service", "rescind"), (None, {}))[1]
check(svc.get("spec", {}).get("type") == "ClusterIP" and svc["spec"].get("selector") == {"app.kubernetes.io/name": "rescind"},
      "client Service rescind")
np_ = objs.get(("NetworkPolicy", "rescind"), (None, {}))[1]
rules = {tuple(p["port"] for p in rule["ports"]): rule["from"] for rule in np_.get("spec", {}).get("ingress", [])}
check(set(rules) == {(7400,), (7480,)}, f"NetworkPolicy: rules for ports {set(rules)}")

# --- compose ----------------------------------------------------------------
cpath = os.path.join(deploy, "compose", "compose.yaml")
with open(cpath) as f:
    comp = yaml.safe_load(f)
nodes = [f"rescind-{r}-{i}" for r in REGIONS for i in (1, 2)]
services = comp.get("services", {})
check(set(services) == set(nodes) | {"prometheus", "grafana"}, f"compose: services {sorted(services)}")
seen_volumes = set()
for n in nodes:
    s = services.get(n, {})
    env = s.get("environment", {})
    check(isinstance(env, dict), f"compose {n}: environment must be a mapping")
    check(env.get("RESCIND_ADVERTISE_ADDR") == f"{n}:7400", f"compose {n}: RESCIND_ADVERTISE_ADDR")
    check(env.get("RESCIND_REGION") == n.split("-")[1], f"compose {n}: RESCIND_REGION")
    check(sorted(env.get("RESCIND_PEERS", "").split(",")) == sorted(f"{m}:7400" for m in nodes if m != n),
          f"compose {n}: RESCIND_PEERS must be the other five nodes")
    check(env.get("RESCIND_CLUSTER_KEY_FILE") == "/run/secrets/cluster_key"
          and env.get("RESCIND_ADMIN_TOKEN_FILE") == "/run/secrets/admin_token", f"compose {n}: secret files")
    check(set(s.get("secrets", [])) == {"cluster_key", "admin_token", "peer_cert", "peer_key", "peer_ca"}, f"compose {n}: secrets")
    check(env.get("RESCIND_PEER_TLS_CERT") == "/run/secrets/peer_cert"
          and env.get("RESCIND_PEER_TLS_KEY") == "/run/secrets/peer_key"
          and env.get("RESCIND_PEER_TLS_CA") == "/run/secrets/peer_ca", f"compose {n}: peer mTLS files")
    check("build" in s and s.get("image") == "rescind:local", f"compose {n}: build and image")
    vols = [v.split(":")[0] for v in s.get("volumes", []) if v.endswith(":/var/lib/rescind")]
    check(len(vols) == 1 and vols[0] in comp.get("volumes", {}) and vols[0] not in seen_volumes,
          f"compose {n}: needs its own named volume at /var/lib/rescind")
    seen_volumes.update(vols)
top_secrets = comp.get("secrets", {})
check(set(top_secrets) == {"cluster_key", "admin_token", "grafana_admin_password", "peer_cert", "peer_key", "peer_ca"}, "compose: top-level secrets")
check(all(v.get("file", "").startswith("./secrets/") for v in top_secrets.values()), "compose: secrets must be files under ./secrets/")
pv = services.get("prometheus", {}).get("volumes", [])
for want in ("../prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro", "../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro"):
    check(want in pv, f"compose prometheus: missing volume {want}")
gv = services.get("grafana", {}).get("volumes", [])
check(any(v.startswith("../grafana/provisioning:") for v in gv), "compose grafana: provisioning from ../grafana/provisioning")
with open(os.path.join(deploy, "compose", ".gitignore")) as f:
    check("/secrets/" in f.read().split(), "deploy/compose/.gitignore must ignore /secrets/")

# The other deploy files compose mounts, when they are there.
prom = os.path.join(deploy, "prometheus", "prometheus.yml")
if os.path.exists(prom):
    with open(prom) as f:
        text = f.read()
    yaml.safe_load(text)
    for n in nodes:
        check(f"{n}:7480" in text, f"deploy/prometheus/prometheus.yml does not scrape {n}:7480 (the compose service)")
    check(os.path.exists(os.path.join(deploy, "prometheus", "alerts.yml")), "deploy/prometheus/alerts.yml is missing")
if os.path.isdir(os.path.join(deploy, "grafana")):
    for sub in ("provisioning", "dashboards"):
        check(os.path.isdir(os.path.join(deploy, "grafana", sub)), f"deploy/grafana/{sub}/ is missing (compose mounts it)")

# --- Dockerfile -----------------------------------------------------------------
with open(os.path.join(deploy, "..", "Dockerfile")) as f:
    dockerfile = f.read()
for want in ("USER 10001:10001", "EXPOSE 7400 7480", 'VOLUME ["/var/lib/rescind"]', "HEALTHCHECK ",
             'ENTRYPOINT ["/usr/local/bin/rescind"]', 'CMD ["serve"]', "--locked -p rescind-cli"):
    check(want in dockerfile, f"Dockerfile: missing {want!r}")
with open(os.path.join(deploy, "..", ".dockerignore")) as f:
    ignored = f.read().split()
for want in ("target", ".git", "deploy/compose/secrets"):
    check(want in ignored, f".dockerignore: missing {want}")

for e in errors:
    print(f"FAIL {e}", file=sys.stderr)
print(f"{'ok  ' if not errors else 'FAIL'} {checks - len(errors)}/{checks} checks "
      f"({len(objs)} Kubernetes objects, {len(services)} compose services)")
sys.exit(1 if errors else 0)
PY

# The Compose spec's JSON schema is not shipped with any package here: point
# COMPOSE_SPEC_SCHEMA at a copy of compose-spec/compose-spec's
# schema/compose-spec.json to validate against it too.
if [ -n "${COMPOSE_SPEC_SCHEMA:-}" ]; then
  echo "== compose.yaml against $COMPOSE_SPEC_SCHEMA"
  python3 -c 'import jsonschema' 2>/dev/null || python3 -m pip install --quiet jsonschema
  python3 - "$COMPOSE_SPEC_SCHEMA" "$deploy/compose/compose.yaml" <<'PY' || fail=1
import json
import sys

import jsonschema
import yaml

schema = json.load(open(sys.argv[1]))
doc = yaml.safe_load(open(sys.argv[2]))
errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))  # the spec is draft-07
for e in errors:
    print(f"FAIL compose.yaml {'/'.join(map(str, e.path))}: {e.message}", file=sys.stderr)
print(f"{'ok  ' if not errors else 'FAIL'} compose.yaml against the Compose spec schema ({len(errors)} errors)")
sys.exit(1 if errors else 0)
PY
fi

if docker compose version >/dev/null 2>&1; then
  echo "== docker compose config"
  if [ -d "$deploy/compose/secrets" ]; then
    docker compose -f "$deploy/compose/compose.yaml" config -q && echo "ok   docker compose config" || fail=1
  else
    echo "skip docker compose config (run deploy/compose/make-secrets.sh first)"
  fi
fi

if [ "$fail" != 0 ]; then
  echo "validate.sh: FAILED" >&2
  exit 1
fi
echo "validate.sh: all passed"
