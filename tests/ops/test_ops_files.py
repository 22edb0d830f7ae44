"""Checks the operator files under ops/ against a live aidbd.

Every metric name used by the Prometheus rules (ops/prometheus/*.yml) and by
the Grafana dashboard (ops/grafana/aidb-dashboard.json) must be a name that a
running aidbd exports on /metrics (or a recording rule of the rule file, or
Prometheus' own `up`), so a renamed metric breaks this test and not a
production alert. Standard library + pytest; PyYAML is not needed (the rule
file is read by a small extractor of its `expr:` and `record:` fields).
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import server_fixtures

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "ops", "prometheus", "aidb-rules.yml")
DASHBOARD = os.path.join(ROOT, "ops", "grafana", "aidb-dashboard.json")
# Series Prometheus makes itself for every scrape target.
PROMETHEUS_SERIES = {"up"}

# --- PromQL metric names -------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
             "unless", "bool", "offset", "inf", "nan", "atan2"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_NUMBER_SUFFIX = re.compile(r"\b\d+(\.\d+)?([eE][+-]?\d+)?[smhdwy]?\b")


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers outside
    strings, label matchers, ranges and grouping clauses that are not
    function calls or keywords. Grafana's $variables are dropped first."""
    e = re.sub(r"\$\{?\w+\}?", "0", expr)
    e = _STRING.sub('""', e)
    # Label matchers, possibly nested in template text: strip innermost first.
    while _BRACES.search(e):
        e = _BRACES.sub(" ", e)
    e = _RANGE.sub(" ", e)
    e = _GROUPING.sub(" ", e)
    e = _NUMBER_SUFFIX.sub(" ", e)
    return {m for m in _IDENT.findall(e) if m.lower() not in _KEYWORDS}


def test_metric_names_extractor():
    assert metric_names('sum by (job, le) (rate(aidb_x_bucket{route="/a/:b", le!=""}[5m]))') \
        == {"aidb_x_bucket"}
    assert metric_names("a > 6 * 3600 and on (job, collection) b > 0") == {"a", "b"}
    assert metric_names('label_replace(rate(c[5m]), "k", "${1}xx", "s", "([0-9]).*")') == {"c"}
    assert metric_names("aidb:rec:rate1h{collection=~\"$collection\"} * 21600 > 1e9") \
        == {"aidb:rec:rate1h"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(h[$__rate_interval])))") \
        == {"h"}
    assert metric_names("time() - start offset 5m") == {"start"}


# --- the files -----------------------------------------------------------------

def rule_file_entries(path):
    """(records, exprs) of a Prometheus rule file: `record:` names and every
    `expr:` (plain, quoted or a folded >- block)."""
    records, exprs = [], []
    lines = open(path).read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*-?\s*record:\s*(\S+)", line)
        if m:
            records.append(m.group(1))
        m = re.match(r"(\s*)-?\s*expr:\s*(.*)$", line)
        if m:
            rest = m.group(2).strip()
            if rest in (">-", ">", "|", "|-"):
                indent = None
                block = []
                i += 1
                while i < len(lines):
                    nxt = lines[i]
                    if nxt.strip() == "":
                        i += 1
                        continue
                    lead = len(nxt) - len(nxt.lstrip())
                    if indent is None:
                        indent = lead
                    if lead < indent:
                        break
                    block.append(nxt.strip())
                    i += 1
                exprs.append(" ".join(block))
                continue
            exprs.append(rest.strip("'\""))
        i += 1
    return records, exprs


def dashboard_exprs(dash):
    exprs = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    exprs.append(t["expr"])
            walk(p.get("panels", []))

    walk(dash["panels"])
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query":
            q = q.get("query") if isinstance(q, dict) else q
            m = re.match(r"\s*label_values\((.*),\s*\w+\)\s*$", q or "")
            exprs.append(m.group(1) if m else q)
    return exprs


def test_dashboard_is_valid_json():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    assert dash["title"] and dash["uid"]
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p["id"])
            assert {"h", "w", "x", "y"} <= set(p["gridPos"]), p["title"]
            for t in p.get("targets", []):
                assert t["expr"].strip(), p["title"]
            walk(p.get("panels", []))

    walk(dash["panels"])
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert len(dashboard_exprs(dash)) >= 10


def test_rule_file_is_read_completely():
    records, exprs = rule_file_entries(RULES)
    n_alerts = len(re.findall(r"^\s*-\s*alert:", open(RULES).read(), re.M))
    assert len(exprs) == len(records) + n_alerts
    assert all(exprs)
    assert n_alerts >= 6


# --- a live aidbd ----------------------------------------------------------------

def _ok(r, status=200):
    assert r.status == status, r
    return r.json()


@pytest.fixture(scope="module")
def scrape(tmp_path_factory):
    """/metrics of an aidbd after a create, an upsert, a single and a batch
    search, a snapshot and an unknown route, so every family has samples."""
    d = server_fixtures.Daemon(tmp_path_factory.mktemp("ops") / "data")
    try:
        _ok(d.post("/collections", {"name": "docs", "dim": 4, "metric": "cosine",
                                    "index": "hnsw"}))
        _ok(d.post("/collections/docs/points",
                   {"vector": [0.1, 0.2, 0.3, 0.4], "payload": {"lang": "en"}}))
        _ok(d.post("/collections/docs/points:batch", {"points": [
            {"vector": [0.4, 0.3, 0.2, 0.1]}, {"vector": [0.2, 0.2, 0.2, 0.2]}]}))
        _ok(d.post("/collections/docs/search", {"vector": [0.1, 0.2, 0.3, 0.4], "top_k": 2}))
        _ok(d.post("/collections/docs/search", {"vector": [0.1, 0.2, 0.3, 0.4], "top_k": 2,
                                                "filter": {"lang": "en"}}))
        _ok(d.post("/collections/docs/search:batch",
                   {"searches": [{"vector": [0.1, 0.2, 0.3, 0.4]}], "top_k": 1}))
        snap = _ok(d.post("/collections/docs/snapshot", {}))
        assert snap["wal_size_bytes"] == 0
        assert d.get("/no/such/route").status == 404
        r = d.get("/metrics")
        assert r.status == 200, r
        text = r.body
        assert d.alive(), d.log_text()
        assert d.stop() == 0, d.log_text()
    finally:
        if d.alive():
            d.kill9()
    return text


def exported_names(text):
    """Sample names of a Prometheus text exposition."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][\w:]*", line).group(0))
    return names


def test_every_metric_used_is_exported(scrape):
    exported = exported_names(scrape)
    assert "aidb_wal_size_bytes" in exported and "aidb_http_requests_total" in exported
    records, rule_exprs = rule_file_entries(RULES)
    with open(DASHBOARD) as f:
        dash_exprs = dashboard_exprs(json.load(f))
    known = exported | set(records) | PROMETHEUS_SERIES
    used = {}
    for where, exprs in (("aidb-rules.yml", rule_exprs), ("aidb-dashboard.json", dash_exprs)):
        for e in exprs:
            for name in metric_names(e):
                used.setdefault(name, set()).add(where)
    unknown = {n: sorted(w) for n, w in used.items() if n not in known}
    assert not unknown, f"not exported by aidbd nor recorded by the rules: {unknown}"
    # Every recording rule is defined from exported series, and used somewhere.
    assert set(records) <= set(used), set(records) - set(used)
    # And the metrics the operations guide says to alert on are used.
    for must in ("aidb_wal_size_bytes", "aidb_wal_seconds_since_truncate",
                 "aidb_wal_bytes_since_truncate", "aidb_http_requests_total",
                 "aidb_http_request_duration_seconds_bucket", "up"):
        assert must in used, must


def test_routes_in_rules_exist(scrape):
    """The route labels the alerts select are the daemon's route templates."""
    routes = set(re.findall(r'route="([^"]+)"', scrape))
    for r in re.findall(r'route="([^"\\]+)"', open(RULES).read()):
        assert r in routes, (r, sorted(routes))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_check_metrics(scrape):
    p = subprocess.run(["promtool", "check", "metrics"], input=scrape.encode(),
                       capture_output=True)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()


def _slug(heading):
    """GitHub's anchor of a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def test_runbook_urls_name_sections_of_the_operations_guide():
    urls = re.findall(r'runbook_url:\s*"([^"]+)"', open(RULES).read())
    assert urls and all(u.startswith("docs/operations.md#") for u in urls), urls
    guide = os.path.join(ROOT, "docs", "operations.md")
    if not os.path.exists(guide):
        pytest.skip("docs/operations.md is not in this checkout")
    text = re.sub(r"^```.*?^```", "", open(guide).read(), flags=re.M | re.S)  # code blocks
    anchors = {_slug(m) for m in re.findall(r"^#+\s+(.*)$", text, re.M)}
    missing = sorted({u.split("#", 1)[1] for u in urls} - anchors)
    assert not missing, f"no such section in docs/operations.md: {missing}"
