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
8. Monitoring (deploy/monitoring): the PrometheusRule and ServiceMonitor have the structure
   the prometheus-operator CRDs accept (checked field by field: the CRDs' OpenAPI schemas
   are not published in a PyPI or npm package as JSON); every alert has expr, for,
   labels.severity, annotations.summary and a runbook_url whose section exists in
   docs/operations.md (and every runbook section there has its alert); the ServiceMonitor
   selects the base Service and names its port; the Grafana dashboard parses, every panel
   queries through the `${datasource}` variable with an expr, ids are unique; every PromQL
   expression parses (promql-parser, the Rust PromQL parser's Python binding; Grafana's
   variables are substituted first) and has balanced brackets and quotes, which the parser's
   terse error does not point at. Whether the `june_*` names exist is
   tests/api/dashboards.rs's job (it needs the running server).
"""

import copy
import json
import pathlib
import re
import sys

import kubernetes_validate
import promql_parser
import yaml

ROOT = pathlib.Path(__file__).resolve().parent
REPO = ROOT.parent
K8S_VERSION = "1.31.0"
KUSTOMIZATIONS = ["k8s/base", "k8s/overlays/dev", "k8s/overlays/prod", "livekit", "stunner", "monitoring"]
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
        meta = {"name": gen["name"]}
        if gen.get("options", {}).get("labels"):
            meta["labels"] = dict(gen["options"]["labels"])
        objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
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


MONITORING = ROOT / "monitoring"
OPERATIONS = REPO / "docs/operations.md"
RUNBOOK_HEADING = "## Alerts and runbooks"
DURATION = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SEVERITIES = {"critical", "warning", "info"}
# The fields the prometheus-operator v1 CRDs define for these objects (monitoring.coreos.com
# PrometheusRule spec.groups[] and rules[], ServiceMonitor spec and endpoints[]): anything
# else is a typo the API server would prune or refuse.
GROUP_FIELDS = {"name", "interval", "rules", "limit", "partial_response_strategy", "query_offset", "labels"}
RULE_FIELDS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
MONITOR_FIELDS = {
    "selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels",
    "sampleLimit", "targetLimit", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit",
    "keepDroppedTargets", "attachMetadata", "scrapeClass", "scrapeProtocols", "fallbackScrapeProtocol",
    "bodySizeLimit", "selectorMechanism", "serviceDiscoveryRole", "convertClassicHistogramsToNHCB",
    "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor", "scrapeClassicHistograms",
}
ENDPOINT_FIELDS = {
    "port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout", "honorLabels",
    "honorTimestamps", "trackTimestampsStaleness", "metricRelabelings", "relabelings", "tlsConfig",
    "authorization", "basicAuth", "oauth2", "bearerTokenSecret", "bearerTokenFile", "followRedirects",
    "enableHttp2", "filterRunning", "proxyUrl", "noProxy", "proxyFromEnvironment", "proxyConnectHeader",
}


def promql_balanced(expr):
    """Why an expression is unbalanced (brackets, braces, parentheses, quotes), or None."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    quote = None
    escaped = False
    for i, c in enumerate(expr):
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = None
            continue
        if c in "\"'`":
            quote = c
        elif c in "([{":
            stack.append(c)
        elif c in ")]}":
            if not stack or stack.pop() != pairs[c]:
                return f"unmatched {c!r} at {i}"
    if quote:
        return f"unclosed {quote}"
    if stack:
        return f"unclosed {stack[-1]!r}"
    return None


# Grafana's interval variables become a duration, any other variable a label value, so
# the rest of a dashboard query can be parsed as PromQL.
GRAFANA_INTERVAL = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
GRAFANA_VARIABLE = re.compile(r"\$\{\w+(:\w+)?\}|\$\w+")


def promql_error(expr, grafana=False):
    """Why `expr` is not valid PromQL, or None."""
    why = promql_balanced(expr)
    if why:
        return f"not balanced: {why}"
    if grafana:
        expr = GRAFANA_VARIABLE.sub("x", GRAFANA_INTERVAL.sub("5m", expr))
    try:
        promql_parser.parse(expr)
    except ValueError as e:
        return f"does not parse: {e}"
    return None


def slug(heading):
    """The anchor a Markdown renderer (GitHub's rules) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_sections():
    """Anchors of the `###` sections under "Alerts and runbooks" in docs/operations.md."""
    anchors = set()
    inside = False
    for line in OPERATIONS.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == RUNBOOK_HEADING
        elif inside and line.startswith("### "):
            anchors.add(slug(line[4:]))
    return anchors


def check_rules(rule_obj):
    where = f"monitoring: PrometheusRule/{rule_obj.get('metadata', {}).get('name')}"
    if rule_obj.get("apiVersion") != "monitoring.coreos.com/v1":
        fail(f"{where}: apiVersion must be monitoring.coreos.com/v1")
    groups = (rule_obj.get("spec") or {}).get("groups")
    if not isinstance(groups, list) or not groups:
        fail(f"{where}: spec.groups must be a non-empty list")
        return set()
    alerts = set()
    group_names = set()
    for g in groups:
        gname = g.get("name")
        if not gname or gname in group_names:
            fail(f"{where}: every group needs a unique name ({gname!r})")
        group_names.add(gname)
        for extra in set(g) - GROUP_FIELDS:
            fail(f"{where}: group {gname}: unknown field {extra}")
        if "interval" in g and not DURATION.match(str(g["interval"])):
            fail(f"{where}: group {gname}: interval {g['interval']!r} is not a duration")
        rules = g.get("rules")
        if not isinstance(rules, list) or not rules:
            fail(f"{where}: group {gname}: rules must be a non-empty list")
            continue
        for r in rules:
            name = r.get("alert") or r.get("record")
            rwhere = f"{where}: {name}"
            for extra in set(r) - RULE_FIELDS:
                fail(f"{rwhere}: unknown field {extra}")
            if ("alert" in r) == ("record" in r):
                fail(f"{rwhere}: a rule is either an alert or a record")
                continue
            expr = r.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                fail(f"{rwhere}: needs an expr")
                continue
            if "$" in expr:
                fail(f"{rwhere}: expr uses a template variable ($); Prometheus has none")
            else:
                why = promql_error(expr)
                if why:
                    fail(f"{rwhere}: expr {why}")
            if "june_" not in expr:
                fail(f"{rwhere}: expr reads no june_* metric")
            if "record" in r:
                continue
            if not ALERT_NAME.match(name):
                fail(f"{rwhere}: alert name is not a Prometheus label value")
            if name in alerts:
                fail(f"{rwhere}: alert defined twice")
            alerts.add(name)
            if not DURATION.match(str(r.get("for", ""))):
                fail(f"{rwhere}: needs a `for` duration (got {r.get('for')!r})")
            if (r.get("labels") or {}).get("severity") not in SEVERITIES:
                fail(f"{rwhere}: labels.severity must be one of {sorted(SEVERITIES)}")
            ann = r.get("annotations") or {}
            if not ann.get("summary"):
                fail(f"{rwhere}: needs annotations.summary")
            url = str(ann.get("runbook_url", ""))
            m = re.match(r"^https?://\S+/docs/operations\.md#([a-z0-9_-]+)$", url)
            if not m:
                fail(f"{rwhere}: annotations.runbook_url must point at docs/operations.md#<section> (got {url!r})")
            elif m.group(1) != slug(name):
                fail(f"{rwhere}: runbook_url anchor #{m.group(1)} is not the alert's own (#{slug(name)})")
    return alerts


def check_service_monitor(mon, services):
    where = f"monitoring: ServiceMonitor/{mon.get('metadata', {}).get('name')}"
    if mon.get("apiVersion") != "monitoring.coreos.com/v1":
        fail(f"{where}: apiVersion must be monitoring.coreos.com/v1")
    spec = mon.get("spec") or {}
    for extra in set(spec) - MONITOR_FIELDS:
        fail(f"{where}: unknown spec field {extra}")
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    if not wanted:
        fail(f"{where}: spec.selector.matchLabels must name the Service's labels")
    namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [mon["metadata"].get("namespace")]
    matched = [
        s for s in services
        if s["metadata"].get("namespace") in namespaces
        and wanted
        and all(s["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
    ]
    if not matched:
        fail(f"{where}: selects no Service of deploy/k8s/base in {namespaces}")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        fail(f"{where}: spec.endpoints must be a non-empty list")
        return
    for ep in endpoints:
        for extra in set(ep) - ENDPOINT_FIELDS:
            fail(f"{where}: unknown endpoint field {extra}")
        port = ep.get("port")
        if not isinstance(port, str) or not port:
            fail(f"{where}: every endpoint needs the Service port's name (port)")
        for s in matched:
            if port not in {p.get("name") for p in s["spec"].get("ports", [])}:
                fail(f"{where}: Service {s['metadata']['name']} has no port named {port!r}")
        if ep.get("path", "/metrics") != "/metrics":
            fail(f"{where}: the server exports metrics at /metrics (got {ep.get('path')!r})")
        for key in ("interval", "scrapeTimeout"):
            if key in ep and not DURATION.match(str(ep[key])):
                fail(f"{where}: {key} {ep[key]!r} is not a duration")


def dashboard_panels(panels):
    for p in panels:
        yield p
        yield from dashboard_panels(p.get("panels", []))


def check_dashboard(path):
    where = f"monitoring: {path.name}"
    try:
        dash = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        fail(f"{where}: does not parse: {e}")
        return
    for key in ("uid", "title", "panels", "schemaVersion"):
        if key not in dash:
            fail(f"{where}: needs {key}")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail(f"{where}: needs a `datasource` template variable of type datasource (query prometheus)")
    uses = {"${datasource}", "$datasource"}
    ids = set()
    queries = 0
    for p in dashboard_panels(dash.get("panels", [])):
        pwhere = f"{where}: panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids or not isinstance(p.get("id"), int):
            fail(f"{pwhere}: ids must be unique integers")
        ids.add(p.get("id"))
        if "gridPos" not in p:
            fail(f"{pwhere}: needs gridPos")
        if p.get("type") == "row":
            continue
        if (p.get("datasource") or {}).get("uid") not in uses:
            fail(f"{pwhere}: must query through the ${{datasource}} variable")
        targets = p.get("targets") or []
        if not targets:
            fail(f"{pwhere}: has no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            fail(f"{pwhere}: target refIds must be unique")
        for t in targets:
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                fail(f"{pwhere}: target {t.get('refId')} has no expr")
                continue
            queries += 1
            if (t.get("datasource") or {}).get("uid", "${datasource}") not in uses:
                fail(f"{pwhere}: target {t.get('refId')} names another datasource")
            why = promql_error(expr, grafana=True)
            if why:
                fail(f"{pwhere}: target {t.get('refId')} expr {why}")
            if "june_" not in expr:
                fail(f"{pwhere}: expr reads no june_* metric")
    print(f"ok   monitoring: {path.name}: {len(ids)} panels, {queries} queries")


def check_monitoring():
    objs = render(MONITORING)
    base = render(ROOT / "k8s/base")
    services = [o for o in base if o["kind"] == "Service"]
    kinds = {}
    for o in objs:
        kinds.setdefault(o["kind"], []).append(o)
    alerts = set()
    for rule in kinds.get("PrometheusRule", []):
        alerts |= check_rules(rule)
    if not alerts:
        fail("monitoring: no PrometheusRule with alerts")
    for mon in kinds.get("ServiceMonitor", []):
        check_service_monitor(mon, services)
    if not kinds.get("ServiceMonitor"):
        fail("monitoring: no ServiceMonitor")
    sections = runbook_sections()
    for name in sorted(alerts):
        if slug(name) not in sections:
            fail(f"monitoring: alert {name} has no runbook section '### {name}' under '{RUNBOOK_HEADING}' in docs/operations.md")
    for anchor in sorted(sections - {slug(a) for a in alerts}):
        fail(f"monitoring: docs/operations.md has a runbook section #{anchor} for no alert")
    dashboards = sorted(MONITORING.glob("*.json"))
    if not dashboards:
        fail("monitoring: no Grafana dashboard JSON")
    for path in dashboards:
        check_dashboard(path)
    print(f"ok   monitoring: {len(alerts)} alerts, each with its runbook section")


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

    check_monitoring()

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
