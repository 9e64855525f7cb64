"""Checks the deployment files without a cluster or Docker (run by `make deploy-check`).

1. Every YAML file under deploy/ parses.
2. Each kustomization renders. No kustomize binary can be installed here, so this resolves
   the subset we use: resources (files and folders), namespace, labels, images, replicas,
   JSON 6902 patches and configMapGenerator with files.
3. Every rendered object of a built-in kind validates against the Kubernetes OpenAPI
   schemas (kubernetes-validate, offline); custom kinds (STUNner, Gateway API) are checked
   for apiVersion/kind/metadata.name only.
4. Nothing holds a literal secret: no Secret objects with data, no env `value` for a
   secret-looking name, no secret-looking keys with values in config files.
5. The Dockerfile's COPY sources exist and its binary is the one Cargo builds.
6. The prod overlay authenticates callers (AUTH_MODE is not none) and does not use the v3
   drop-in profile (JUNE_COMPAT, stt.auth=none).
7. The prod overlay runs as replicas should: trusted proxies for the ingress, rate limits
   shared through Redis, and a termination grace period that covers the drain and the
   in-flight budget (terminationGracePeriodSeconds > drain_seconds + shutdown_timeout_secs).
"""

import copy
import pathlib
import re
import sys

import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent
REPO = ROOT.parent
K8S_VERSION = "1.31.0"
KUSTOMIZATIONS = ["k8s/base", "k8s/overlays/dev", "k8s/overlays/prod", "livekit", "stunner"]
SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|API_KEY|APIKEY|PRIVATE)", re.I)
# Config keys that hold secret values (not references to them, like `secretName`).
SECRET_KEY = re.compile(r"(secret|token|password|private)(?!.*(name|ref)$)", re.I)
BUILTIN_GROUPS = {"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1", "batch/v1"}

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def resolve_pointer(doc, path):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc.setdefault(p, {})
    return doc, parts[-1]


def apply_json6902(obj, ops):
    for op in ops:
        parent, key = resolve_pointer(obj, op["path"])
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if key == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(key), op["value"])
                else:
                    parent[int(key)] = op["value"]
            else:
                if op["op"] == "replace" and key not in parent:
                    raise KeyError(f"replace of missing {op['path']}")
                parent[key] = op["value"]
        elif op["op"] == "remove":
            del parent[int(key) if isinstance(parent, list) else key]
        else:
            raise ValueError(f"unsupported op {op['op']}")


def render(folder):
    k = load_all(folder / "kustomization.yaml")[0]
    objs = []
    for res in k.get("resources", []):
        path = (folder / res).resolve()
        if path.is_dir():
            objs.extend(render(path))
        else:
            objs.extend(load_all(path))
    for gen in k.get("configMapGenerator", []):
        data = {}
        for entry in gen.get("files", []):
            key, _, file = entry.partition("=") if "=" in entry else (pathlib.Path(entry).name, "", entry)
            data[key] = (folder / file).read_text()
        objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
    objs = [copy.deepcopy(o) for o in objs]
    for o in objs:
        meta = o.setdefault("metadata", {})
        if "namespace" in k and o["kind"] not in ("Namespace", "GatewayClass"):
            meta["namespace"] = k["namespace"]
        for group in k.get("labels", []):
            meta.setdefault("labels", {}).update(group.get("pairs", {}))
    for p in k.get("patches", []):
        target = p.get("target", {})
        ops = yaml.safe_load(p["patch"])
        hits = [o for o in objs if o["kind"] == target.get("kind") and o["metadata"]["name"] == target.get("name")]
        if not hits:
            raise ValueError(f"patch target {target} not found")
        for o in hits:
            apply_json6902(o, ops)
    for r in k.get("replicas", []):
        for o in objs:
            if o["kind"] == "Deployment" and o["metadata"]["name"] == r["name"]:
                o["spec"]["replicas"] = r["count"]
    for img in k.get("images", []):
        for o in objs:
            for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag or 'latest')}"
    return objs


def check_secrets(where, obj):
    if obj.get("kind") == "Secret" and (obj.get("data") or obj.get("stringData")):
        fail(f"{where}: a Secret with literal data ({obj['metadata'].get('name')})")
    def walk(node, path):
        if isinstance(node, dict):
            if "name" in node and "value" in node and SECRET_NAME.search(str(node["name"])) and node["value"]:
                fail(f"{where}: literal value for secret-looking env {node['name']} at {path}")
            for k, v in node.items():
                if SECRET_KEY.search(str(k)) and isinstance(v, str) and v and path.count("/data") == 0:
                    fail(f"{where}: secret-looking key {k} has a literal value at {path}")
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")
    walk(obj, "")


def main():
    for path in sorted(ROOT.rglob("*.yaml")):
        try:
            docs = load_all(path)
        except yaml.YAMLError as e:
            fail(f"{path.relative_to(REPO)} does not parse: {e}")
            continue
        for d in docs:
            check_secrets(str(path.relative_to(REPO)), d)
    # The LiveKit server config must not carry its keys.
    lk = load_all(ROOT / "livekit/livekit.yaml")[0]
    if lk.get("keys"):
        fail("deploy/livekit/livekit.yaml holds API keys; use LIVEKIT_KEYS from a Secret")
    if "/api/livekit-webhooks" not in " ".join(lk.get("webhook", {}).get("urls", [])):
        fail("deploy/livekit/livekit.yaml: webhook.urls must point at /api/livekit-webhooks")

    for name in KUSTOMIZATIONS:
        try:
            objs = render(ROOT / name)
        except Exception as e:  # noqa: BLE001 - report any rendering problem as a failure
            fail(f"{name}: does not render: {e!r}")
            continue
        for o in objs:
            ident = f"{name}: {o.get('kind')}/{o.get('metadata', {}).get('name')}"
            if not (o.get("apiVersion") and o.get("kind") and o.get("metadata", {}).get("name")):
                fail(f"{ident}: needs apiVersion, kind and metadata.name")
                continue
            check_secrets(ident, o)
            if o["apiVersion"] in BUILTIN_GROUPS:
                try:
                    kubernetes_validate.validate(o, K8S_VERSION, strict=True)
                except kubernetes_validate.ValidationError as e:
                    fail(f"{ident}: {e.message} at {'/'.join(map(str, e.path))}")
        kinds = sorted({o["kind"] for o in objs})
        print(f"ok   {name}: {len(objs)} objects ({', '.join(kinds)})")

    prod = {(o["kind"], o["metadata"]["name"]): o for o in render(ROOT / "k8s/overlays/prod")}
    dep = prod[("Deployment", "june-orchestrator")]
    if dep["spec"]["replicas"] < 2:
        fail("prod: the Deployment needs 2+ replicas")
    env = {e["name"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    if "DATABASE_URL" not in env:
        fail("prod: replicas need DATABASE_URL (PostgreSQL) from the Secret")
    # The v3 drop-in profile opens the STT routes (docs/compat.md): never in production.
    settings = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    for (kind, _), o in prod.items():
        if kind == "ConfigMap":
            settings.update(o.get("data") or {})
    # AUTH_MODE=none lets anyone create sessions and mint tokens (docs/threat-model.md).
    if str(settings.get("AUTH_MODE") or "none").strip().lower() in ("", "none"):
        fail("prod: AUTH_MODE is none; production must authenticate callers")
    if settings.get("JUNE_COMPAT") not in (None, "", "none"):
        fail("prod: JUNE_COMPAT is set; the v3 drop-in profile is not for production")
    if str(settings.get("STT_WEBHOOK_AUTH", "")).lower() == "none" or str(
        settings.get("JUNE__STT__AUTH", "")
    ).lower() == "none":
        fail("prod: stt.auth=none lets anyone post transcripts")

    # Replicas behind an ingress (docs/operations.md, "Replicas").
    if not settings.get("TRUSTED_PROXIES"):
        fail("prod: TRUSTED_PROXIES is unset; every client would share the ingress's rate budget")
    if not settings.get("RATE_LIMIT_REDIS_URL"):
        fail("prod: RATE_LIMIT_REDIS_URL is unset; each replica would grant its own budget")
    pod = dep["spec"]["template"]["spec"]
    drain = int(settings.get("JUNE__SERVER__DRAIN_SECONDS") or 0)
    shutdown = int(settings.get("JUNE__SERVER__SHUTDOWN_TIMEOUT_SECS") or 30)
    grace = int(pod.get("terminationGracePeriodSeconds", 30))
    if grace <= drain + shutdown:
        fail(f"prod: terminationGracePeriodSeconds {grace} must exceed drain {drain} + shutdown {shutdown} s")
    if drain == 0:
        fail("prod: JUNE__SERVER__DRAIN_SECONDS is 0; a rolling restart would drop requests")

    docker = (ROOT / "Dockerfile").read_text()
    for line in docker.splitlines():
        m = re.match(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$", line.strip())
        if m:
            for src in m.group(1).split():
                if not (REPO / src).exists():
                    fail(f"Dockerfile: COPY source {src} does not exist")
    cargo = (REPO / "bin/june-orchestrator/Cargo.toml").read_text()
    binary = re.search(r'\[\[bin\]\]\s*name\s*=\s*"([^"]+)"', cargo).group(1)
    if f"--bin {binary}" not in docker or f"/usr/local/bin/{binary}" not in docker:
        fail(f"Dockerfile: must build and run the binary {binary}")
    print("ok   Dockerfile: COPY sources exist, binary", binary)

    if failures:
        print(f"{len(failures)} deployment check(s) failed")
        sys.exit(1)
    print("deployment checks passed")


if __name__ == "__main__":
    main()
