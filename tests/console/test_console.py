"""The web console in a real browser: Debian's chromium, headless, driven by
chromedriver through selenium, against a real aidbd started with the daemon
tests' helper (tests/server/conftest.py). Run by run.sh.

Every value the page shows is checked against the HTTP API; every action is
done through its button and the page's confirm dialog; the browser's console
must stay free of errors (only the 4xx answers a step provokes on purpose are
allowed, and only in that step). A screenshot of each view goes to
$AIDB_CONSOLE_SCREENSHOTS.
"""
import importlib.util
import json
import math
import os
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "aidb_server_conftest", os.path.join(HERE, "..", "server", "conftest.py"))
server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(server)
Daemon = server.Daemon

SHOTS = os.environ.get("AIDB_CONSOLE_SCREENSHOTS") or os.path.join(
    server.BUILD_DIR, "console-screenshots")
WAIT = 30  # seconds any one expected state may take to appear (not asserted)
KEY = "console-test-key-7"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def shots():
    shutil.rmtree(SHOTS, ignore_errors=True)
    os.makedirs(SHOTS)
    return SHOTS


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    opts = Options()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-default-apps", "--lang=en-US",
              "--user-data-dir=" + str(tmp_path_factory.mktemp("chromium-profile"))):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def start(tmp_path_factory, name, *flags):
    return Daemon(tmp_path_factory.mktemp(name) / "data", "--history-interval-ms", "500", *flags)


def stop(d):
    assert d.alive(), "aidbd died:\n" + d.log_text()
    assert d.stop() == 0, d.log_text()


# ---------------------------------------------------------------- helpers

def url(d, path="/"):
    return f"http://{d.host}:{d.port}{path}"


def wait(driver, cond, what):
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda drv: cond())
    except Exception as e:  # TimeoutException, with the page's state for the reader
        banner = driver.execute_script("return document.getElementById('error-text').textContent")
        raise AssertionError(f"timed out waiting for {what}; error banner: {banner!r}") from e


def console_errors(driver, allowed=()):
    """The browser log's warnings and errors since the last call, less those
    that contain one of `allowed`."""
    bad = []
    for entry in driver.get_log("browser"):
        if entry["level"] not in ("SEVERE", "WARNING"):
            continue
        if any(a in entry["message"] for a in allowed):
            continue
        bad.append(entry)
    return bad


def screenshot(driver, shots, name):
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 140, 4000)))
    path = os.path.join(shots, name + ".png")
    driver.save_screenshot(path)
    driver.set_window_size(1400, 1000)
    print("console screenshot:", path)
    return path


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def table_rows(driver):
    """The collection table: {name: {field: (data-value, text)}}."""
    return js(driver, """
        const out = {};
        for (const tr of document.querySelectorAll('#collections-table tbody tr')) {
          const row = {};
          for (const td of tr.querySelectorAll('td')) {
            row[td.dataset.field] = [td.dataset.value, td.textContent];
          }
          out[tr.dataset.collection] = row;
        }
        return out;""")


def info_items(driver):
    """The collection view's info list: {field: (data-value, text)}."""
    return js(driver, """
        const out = {};
        for (const dd of document.querySelectorAll('#coll-info dd')) {
          out[dd.dataset.field] = [dd.dataset.value, dd.textContent];
        }
        return out;""")


def chart(driver, svg_id):
    """An SVG chart's data attributes and its line's last point."""
    return js(driver, """
        const svg = document.getElementById(arguments[0]);
        const line = svg.querySelector('polyline');
        const pts = line ? line.getAttribute('points').trim().split(' ') : [];
        const last = pts.length ? pts[pts.length - 1].split(',').map(Number) : null;
        return {count: Number(svg.dataset.count || 0), last_value: svg.dataset.lastValue,
                zero_y: Number(svg.dataset.zeroY), last_point: last, n_points: pts.length};""",
              svg_id)


def click(driver, element_id):
    driver.find_element(By.ID, element_id).click()


def confirm(driver, expect_title, accept=True):
    wait(driver, lambda: driver.find_element(By.ID, "confirm-dialog").get_attribute("open")
         is not None, "the confirm dialog")
    assert driver.find_element(By.ID, "confirm-title").text == expect_title
    click(driver, "confirm-ok" if accept else "confirm-cancel")
    wait(driver, lambda: driver.find_element(By.ID, "confirm-dialog").get_attribute("open") is None,
         "the confirm dialog to close")


def notice(driver):
    return js(driver, "const n = document.getElementById('notice'); return n.hidden ? '' : n.textContent")


def error_banner(driver):
    return js(driver, "const b = document.getElementById('error-banner');"
                      "return b.hidden ? '' : document.getElementById('error-text').textContent")


def fmt_bytes(n):
    """The page's fmtBytes."""
    if n < 1024:
        return f"{n} B"
    v, unit = float(n), None
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        v /= 1024
        if v < 1024:
            break
    digits = 0 if v >= 100 else 1 if v >= 10 else 2
    return f"{v:.{digits}f} {unit}"


def index_text(c):
    if c["index"] == "hnsw":
        h = c["hnsw"]
        return f"hnsw (m={h['m']}, ef_construction={h['ef_construction']}, ef_search={h['ef_search']})"
    if c["index"] == "ivf":
        v = c["ivf"]
        return f"ivf (nlist={v['nlist']}, nprobe={v['nprobe']}, rerank={v['rerank']})"
    return c["index"]


def wal_seconds(d):
    out = {}
    for line in d.get("/metrics").body.splitlines():
        if line.startswith("aidb_wal_seconds_since_truncate{"):
            name = line.split('collection="', 1)[1].split('"', 1)[0]
            out[name] = float(line.rsplit(" ", 1)[1])
    return out


def vec(i, dim):
    return [math.sin(i * 0.37 + k) for k in range(dim)]


def fill(d, name, n, dim, start=0):
    points = [{"id": f"00000000-0000-4000-8000-{i:012d}", "vector": vec(i, dim),
               "payload": {"i": i, "lang": "en" if i % 2 == 0 else "de"}}
              for i in range(start, start + n)]
    r = d.post(f"/collections/{name}/points:batch", {"points": points})
    assert r.status == 200, r
    return points


# ---------------------------------------------------------------- tests

def test_page_is_served_with_its_headers(tmp_path_factory):
    d = start(tmp_path_factory, "headers", "--api-key", KEY)
    try:
        for path in ("/", "/console", "/console/"):
            r = d.get(path)  # no key: the page holds no data
            assert r.status == 200, r
            assert r.headers["content-type"] == "text/html; charset=utf-8"
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-content-type-options"] == "nosniff"
            assert '<script src="/console/app.js"' in r.body
        for path, ctype in (("/console/app.js", "text/javascript; charset=utf-8"),
                            ("/console/app.css", "text/css; charset=utf-8"),
                            ("/console/favicon.svg", "image/svg+xml")):
            r = d.get(path)
            assert r.status == 200 and r.headers["content-type"] == ctype, (path, r)
            assert int(r.headers["content-length"]) == len(r.body.encode())
        assert d.request("HEAD", "/console").status == 200
        r = d.get("/console/nope.js")
        assert r.status == 404 and r.json()["error"] == "no console file nope.js"
        r = d.post("/console", {})
        assert r.status == 405 and r.headers["allow"] == "GET"
        # Data still needs the key, the history too.
        assert d.get("/collections").status == 401
        assert d.get("/collections/x/history").status == 401
        r = d.get("/collections/x/history", headers={"api-key": KEY})
        assert r.status == 404 and r.json()["error"]
    finally:
        stop(d)


def test_console(tmp_path_factory, browser, shots):
    d = start(tmp_path_factory, "console")
    try:
        run_console(d, browser, shots)
    finally:
        stop(d)


def run_console(d, driver, shots):
    assert d.post("/collections", {"name": "docs", "dim": 8, "metric": "cosine", "index": "hnsw",
                                   "hnsw": {"m": 12, "ef_construction": 100}}).status == 200
    assert d.post("/collections", {"name": "flat_l2", "dim": 3, "metric": "euclidean",
                                   "index": "flat"}).status == 200
    assert d.post("/collections", {"name": "scratch", "dim": 2, "index": "ivf",
                                   "ivf": {"nlist": 4}}).status == 200
    points = fill(d, "docs", 200, 8)
    fill(d, "flat_l2", 30, 3)

    # ---- overview: the table against GET /collections and /metrics
    driver.get(url(d, "/"))
    wait(driver, lambda: len(table_rows(driver)) == 3, "three rows in the collection table")
    api = {c["name"]: c for c in d.get("/collections").json()}
    rows = table_rows(driver)
    secs = wal_seconds(d)
    assert set(rows) == set(api)
    for name, c in api.items():
        row = rows[name]
        assert row["name"][1] == name
        assert row["len"] == [str(c["len"]), f"{c['len']:,}"]
        assert row["dim"] == [str(c["dim"]), f"{c['dim']:,}"]
        assert row["metric"] == [c["metric"], c["metric"]]
        assert row["index"][1] == index_text(c)
        assert row["wal_size_bytes"] == [str(c["wal_size_bytes"]), fmt_bytes(c["wal_size_bytes"])]
        assert row["wal_bytes_since_truncate"] == [str(c["wal_bytes_since_truncate"]),
                                                   fmt_bytes(c["wal_bytes_since_truncate"])]
        assert 0 <= float(row["wal_seconds_since_truncate"][0]) <= secs[name]
        assert row["wal_last_truncate"] == ["", "never"]
    assert api["docs"]["len"] == 200 and api["docs"]["wal_size_bytes"] > 0
    assert rows["docs"]["index"][1] == "hnsw (m=12, ef_construction=100, ef_search=0)"
    # The version in the header comes from /health's AIDB-Version header.
    version = d.get("/health").headers["aidb-version"]
    wait(driver, lambda: js(driver, "return document.getElementById('daemon-info').textContent")
         .startswith("aidbd " + version + " "), "the daemon's version in the header")
    wait(driver, lambda: js(driver, "return document.querySelector('#sum-rate .value').textContent")
         != "…", "a request rate")
    assert console_errors(driver) == []
    screenshot(driver, shots, "01-collections")

    # ---- the collection view: info, chart of WAL size and points
    driver.find_element(By.CSS_SELECTOR, '#collections-table a[href="#/collections/docs"]').click()
    wait(driver, lambda: info_items(driver).get("len", [None])[0] == "200", "the docs view")
    wait(driver, lambda: chart(driver, "chart-wal")["count"] >= 3, "three history samples")
    info = d.get("/collections/docs").json()
    items = info_items(driver)
    assert items["dim"][0] == "8" and items["metric"][0] == "cosine"
    assert items["hnsw_m"][0] == "12" and items["ef_construction"][0] == "100"
    assert items["wal_size_bytes"][0] == str(info["wal_size_bytes"])
    assert items["wal_last_lsn"][0] == str(info["wal_last_lsn"])
    hist = d.get("/collections/docs/history").json()
    assert hist["interval_seconds"] == 0.5 and hist["capacity"] == 360
    assert hist["samples"][-1]["wal_size_bytes"] == info["wal_size_bytes"]
    assert hist["samples"][-1]["points"] == 200
    wal = chart(driver, "chart-wal")
    assert wal["last_value"] == str(info["wal_size_bytes"])
    assert wal["last_point"][1] < wal["zero_y"]  # above the axis
    assert chart(driver, "chart-points")["last_value"] == "200"
    assert js(driver, "return document.getElementById('snapshots-empty').hidden") is False
    screenshot(driver, shots, "02-collection")

    # ---- a snapshot, cancelled first, then confirmed: the WAL drops to 0
    click(driver, "action-snapshot")
    confirm(driver, "Take snapshot", accept=False)
    assert d.get("/collections/docs/snapshots").json()["snapshots"] == []
    click(driver, "action-snapshot")
    wait(driver, lambda: driver.find_element(By.ID, "confirm-dialog").get_attribute("open")
         is not None, "the confirm dialog")
    screenshot(driver, shots, "03-confirm-snapshot")
    confirm(driver, "Take snapshot")
    wait(driver, lambda: info_items(driver)["wal_size_bytes"][0] == "0", "WAL size 0 in the page")
    wait(driver, lambda: chart(driver, "chart-wal")["last_value"] == "0", "the chart at 0")
    wal = chart(driver, "chart-wal")
    assert wal["last_point"][1] == pytest.approx(wal["zero_y"])  # the line ends on the axis
    snaps = d.get("/collections/docs/snapshots").json()["snapshots"]
    assert len(snaps) == 1
    info = d.get("/collections/docs").json()
    assert info["wal_size_bytes"] == 0 and info["wal_last_truncate"]
    assert "Snapshot " + snaps[0]["file"] in notice(driver)
    wait(driver, lambda: js(driver, "return document.querySelectorAll('#snapshots-table tbody tr')"
                                    ".length") == 1, "the snapshot listed")
    row = js(driver, "const tr = document.querySelector('#snapshots-table tbody tr');"
                     "return [tr.dataset.file, tr.cells[1].textContent, tr.cells[2].textContent]")
    assert row == [snaps[0]["file"], f"{snaps[0]['lsn']:,}", "200"]
    assert console_errors(driver) == []
    screenshot(driver, shots, "04-after-snapshot")

    # The table of the overview says 0 too.
    driver.get(url(d, "/#/"))
    wait(driver, lambda: table_rows(driver).get("docs", {}).get("wal_size_bytes") == ["0", "0 B"],
         "WAL size 0 in the collection table")
    assert table_rows(driver)["docs"]["wal_last_truncate"][0] == info["wal_last_truncate"]
    driver.get(url(d, "/#/collections/docs"))
    wait(driver, lambda: info_items(driver).get("len", [None])[0] == "200", "the docs view")

    # ---- restore the listed snapshot (after more writes, replayed on top)
    fill(d, "docs", 10, 8, start=200)
    wait(driver, lambda: info_items(driver)["len"][0] == "210", "210 points")
    driver.find_element(By.CSS_SELECTOR, f'#snapshots-table button[data-file="{snaps[0]["file"]}"]') \
        .click()
    confirm(driver, "Restore snapshot")
    wait(driver, lambda: "Restored" in notice(driver), "the restore's notice")
    assert notice(driver) == f'Restored "docs" from {snaps[0]["file"]}: 210 points.'
    assert d.get("/collections/docs").json()["len"] == 210
    wait(driver, lambda: info_items(driver)["wal_size_bytes"][0] ==
         str(d.get("/collections/docs").json()["wal_size_bytes"]), "the WAL after the restore")
    assert error_banner(driver) == ""
    assert console_errors(driver) == []

    # ---- search: a point's vector from its id, then with a filter
    target = points[17]
    driver.find_element(By.ID, "search-point").send_keys(target["id"])
    click(driver, "search-load")
    wait(driver, lambda: driver.find_element(By.ID, "search-vector").get_attribute("value") != "",
         "the point's vector in the search box")
    loaded = json.loads(driver.find_element(By.ID, "search-vector").get_attribute("value"))
    assert loaded == d.get(f"/collections/docs/points/{target['id']}").json()["vector"]
    k = driver.find_element(By.ID, "search-k")
    k.clear()
    k.send_keys("5")
    click(driver, "search-run")
    wait(driver, lambda: js(driver, "return !document.getElementById('search-results').hidden"),
         "search results")
    hits = js(driver, """return [...document.querySelectorAll('#search-results tbody tr')].map(
        (tr) => [tr.dataset.id, Number(tr.querySelector('[data-field=score]').dataset.value),
                 JSON.parse(tr.querySelector('pre').textContent)])""")
    want = d.post("/collections/docs/search",
                  {"vector": loaded, "top_k": 5, "with_payload": True}).json()["results"]
    assert [h[0] for h in hits] == [w["id"] for w in want]
    assert [h[1] for h in hits] == [w["score"] for w in want]
    assert [h[2] for h in hits] == [w["payload"] for w in want]
    assert hits[0][0] == target["id"]
    driver.find_element(By.ID, "search-filter").send_keys('{"lang": "de"}')
    click(driver, "search-run")
    wait(driver, lambda: all(json.loads(p)["lang"] == "de" for p in js(
        driver, "return [...document.querySelectorAll('#search-results pre')].map(p => p.textContent)"))
        and "hits" in driver.find_element(By.ID, "search-status").text, "filtered results")
    hits = js(driver, "return [...document.querySelectorAll('#search-results tbody tr')]"
                      ".map(tr => tr.dataset.id)")
    want = d.post("/collections/docs/search", {"vector": loaded, "top_k": 5, "filter": {"lang": "de"},
                                               "with_payload": True}).json()["results"]
    assert hits == [w["id"] for w in want] and len(hits) == 5
    assert console_errors(driver) == []
    screenshot(driver, shots, "05-search")
    # A hit's id searches with that point's vector (the filter still applies).
    other = hits[1]
    driver.find_element(By.CSS_SELECTOR, f'#search-results tr[data-id="{other}"] button').click()
    wait(driver, lambda: js(driver, "const tr = document.querySelector('#search-results tbody tr');"
                                    "return tr ? tr.dataset.id : null") == other,
         "the search from a hit")
    assert driver.find_element(By.ID, "search-point").get_attribute("value") == other
    assert json.loads(driver.find_element(By.ID, "search-vector").get_attribute("value")) == \
        d.get(f"/collections/docs/points/{other}").json()["vector"]

    # An error is shown as the API words it (a wrong dimension: HTTP 400).
    box = driver.find_element(By.ID, "search-vector")
    box.clear()
    box.send_keys("[1, 2, 3]")
    click(driver, "search-run")
    wait(driver, lambda: error_banner(driver) != "", "the error banner")
    api_error = d.post("/collections/docs/search", {"vector": [1, 2, 3], "top_k": 5,
                                                    "filter": {"lang": "de"},
                                                    "with_payload": True}).json()["error"]
    assert error_banner(driver) == f"Search failed (HTTP 400): {api_error}"
    assert console_errors(driver, allowed=("status of 400",)) == []
    screenshot(driver, shots, "06-api-error")

    # ---- ef_search
    ef = driver.find_element(By.ID, "ef-input")
    ef.clear()
    ef.send_keys("123")
    click(driver, "action-ef")
    confirm(driver, "Set ef_search")
    wait(driver, lambda: info_items(driver)["ef_search"][0] == "123", "ef_search 123 in the page")
    assert d.get("/collections/docs").json()["hnsw"]["ef_search"] == 123
    assert "ef_search of \"docs\" is now 123." in notice(driver)
    assert error_banner(driver) == ""

    # ---- compact
    assert d.delete(f"/collections/docs/points/{points[3]['id']}").status == 200
    click(driver, "action-compact")
    confirm(driver, "Compact")
    wait(driver, lambda: "Compacted" in notice(driver), "the compaction's notice")
    assert notice(driver) == 'Compacted "docs": 209 points.'
    assert console_errors(driver) == []

    # A flat collection: no ef_search to set.
    driver.get(url(d, "/#/collections/flat_l2"))
    wait(driver, lambda: info_items(driver).get("metric", [None])[0] == "euclidean", "flat_l2")
    assert driver.find_element(By.ID, "action-ef").get_attribute("disabled") is not None
    assert "ef_search" not in info_items(driver)
    # Compacting it: nothing to do (the API answers false), and the page says so.
    click(driver, "action-compact")
    confirm(driver, "Compact")
    wait(driver, lambda: "Nothing to compact" in notice(driver), "the flat compaction's notice")
    assert notice(driver) == 'Nothing to compact in "flat_l2" (exact index): 30 points.'
    assert error_banner(driver) == "" and console_errors(driver) == []

    # ---- an IVF collection: its parameters; ef_search sets the lists probed
    driver.get(url(d, "/#/collections/scratch"))
    wait(driver, lambda: info_items(driver).get("dim", [None])[0] == "2", "scratch")
    items = info_items(driver)
    assert items["ivf_nlist"] == ["4", "4"], items
    assert items["ivf_nprobe"] == ["0", "0 (automatic)"], items
    assert driver.find_element(By.ID, "action-ef").get_attribute("disabled") is None
    ef = driver.find_element(By.ID, "ef-input")
    ef.clear()
    ef.send_keys("3")
    click(driver, "action-ef")
    confirm(driver, "Set ef_search")
    wait(driver, lambda: info_items(driver)["ivf_nprobe"][0] == "3", "nprobe 3 in the page")
    assert d.get("/collections/scratch").json()["ivf"]["nprobe"] == 3
    assert 'ef_search of "scratch" is now 3 (lists probed).' in notice(driver)

    # ---- drop (through the page, back to the list)
    click(driver, "action-drop")
    confirm(driver, "Drop collection")
    wait(driver, lambda: js(driver, "return location.hash") == "#/" and
         set(table_rows(driver)) == {"docs", "flat_l2"}, "the list without scratch")
    assert d.get("/collections/scratch").status == 404
    assert console_errors(driver) == []

    # ---- requests: rates and latency quantiles from /metrics
    driver.get(url(d, "/#/requests"))
    wait(driver, lambda: js(driver, "return document.querySelector("
                                    "'#requests-table tr[data-route=\"/collections/:name/search\"]')"
                                    " !== null"), "the search route's row")
    wait(driver, lambda: js(driver, "return document.querySelector("
                                    "'#requests-table tr[data-route=\"/metrics\"]').cells[2]"
                                    ".textContent") != "…", "a rate")
    cells = js(driver, "return [...document.querySelector("
                       "'#requests-table tr[data-route=\"/collections/:name/search\"]').cells]"
                       ".map(c => c.textContent)")
    total = sum(int(line.rsplit(" ", 1)[1]) for line in d.get("/metrics").body.splitlines()
                if line.startswith('aidb_http_requests_total{route="/collections/:name/search"'))
    assert 4 <= int(cells[1].replace(",", "")) <= total
    assert int(cells[4]) == 0 and int(cells[3]) >= 1  # the 400 above
    assert all(c.endswith(("µs", "ms", " s")) for c in cells[5:8])
    assert console_errors(driver) == []
    screenshot(driver, shots, "07-requests")


def test_api_key(tmp_path_factory, browser, shots):
    d = start(tmp_path_factory, "keyed", "--api-key", KEY)
    try:
        h = {"api-key": KEY}
        assert d.post("/collections", {"name": "secret", "dim": 4}, headers=h).status == 200
        driver = browser
        driver.get(url(d, "/console"))
        # A fresh tab of another origin: no key yet, the page asks for it.
        wait(driver, lambda: driver.find_element(By.ID, "key-dialog").get_attribute("open")
             is not None, "the API key dialog")
        assert driver.find_element(By.ID, "key-error").text == "missing API key"
        screenshot(driver, shots, "08-api-key")
        driver.find_element(By.ID, "key-input").send_keys("wrong")
        click(driver, "key-ok")
        wait(driver, lambda: driver.find_element(By.ID, "key-error").text == "invalid API key"
             and driver.find_element(By.ID, "key-dialog").get_attribute("open") is not None,
             "the dialog again after a wrong key")
        driver.find_element(By.ID, "key-input").send_keys(KEY)
        click(driver, "key-ok")
        wait(driver, lambda: "secret" in table_rows(driver), "the table with the key")
        assert driver.find_element(By.ID, "key-dialog").get_attribute("open") is None
        assert js(driver, "return sessionStorage.getItem('aidb-console-api-key')") == KEY
        assert js(driver, "return localStorage.length") == 0
        assert "aidb-console-api-key" not in js(driver, "return document.cookie")
        assert table_rows(driver)["secret"]["dim"][0] == "4"
        # The collection view's calls carry the key too.
        driver.get(url(d, "/console#/collections/secret"))
        wait(driver, lambda: chart(driver, "chart-wal")["count"] >= 1, "secret's chart")
        assert js(driver, "return document.getElementById('key-dialog').open") is False
        # Forgetting the key asks again.
        click(driver, "forget-key")
        wait(driver, lambda: driver.find_element(By.ID, "key-dialog").get_attribute("open")
             is not None, "the dialog after forgetting the key")
        assert js(driver, "return sessionStorage.getItem('aidb-console-api-key')") is None
        assert console_errors(driver, allowed=("status of 401",)) == []
    finally:
        stop(d)
