// AIDB console: a single page over aidbd's HTTP API (docs/http-api.md).
// Every call goes through api() below: the same routes, the same API key,
// and errors shown as the API words them (its "error" field). No framework,
// no dependency: data is put in the page with textContent only.
'use strict';

const KEY_STORE = 'aidb-console-api-key';
const REFRESH_MS = 5000;

// ---------------------------------------------------------------- helpers

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtInt(n) {
  return Number(n).toLocaleString('en-US');
}

function fmtBytes(n) {
  n = Number(n);
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ' + units[i];
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

function fmtSeconds(s) {
  if (s === null || !isFinite(s)) return '—';
  if (s < 0.001) return (s * 1e6).toFixed(0) + ' µs';
  if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + ' ms';
  return s.toFixed(2) + ' s';
}

// "2026-11-29 19:36:15" in the browser's time zone.
function fmtTime(iso) {
  if (!iso) return 'never';
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${fmtClock(d.getTime())}`;
}

function fmtClock(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

function indexText(c) {
  if (c.index === 'hnsw' && c.hnsw) {
    return `hnsw (m=${c.hnsw.m}, ef_construction=${c.hnsw.ef_construction}, ef_search=${c.hnsw.ef_search})`;
  }
  if (c.index === 'ivf' && c.ivf) {
    return `ivf (nlist=${c.ivf.nlist}, nprobe=${c.ivf.nprobe}, rerank=${c.ivf.rerank})`;
  }
  return c.index;
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The "error" field of an answer, else its text.
function errorOf(text, status) {
  try {
    const j = JSON.parse(text);
    if (j && typeof j.error === 'string') return j.error;
  } catch (e) {
    // not JSON
  }
  return text || `HTTP ${status}`;
}

let keyWaiters = null;  // resolvers waiting for a key while the dialog is open

function askKey(message) {
  if (!keyWaiters) {
    keyWaiters = [];
    $('key-error').textContent = message || '';
    $('key-input').value = '';
    $('key-dialog').showModal();
    $('key-input').focus();
  }
  return new Promise((resolve) => keyWaiters.push(resolve));
}

function submitKey() {
  const key = $('key-input').value.trim();
  if (!key) {
    $('key-error').textContent = 'Enter the key aidbd was started with.';
    return;
  }
  sessionStorage.setItem(KEY_STORE, key);
  $('key-dialog').close();
  updateKeyButton();
  const waiters = keyWaiters || [];
  keyWaiters = null;
  for (const w of waiters) w();
}

function updateKeyButton() {
  $('forget-key').hidden = !sessionStorage.getItem(KEY_STORE);
}

// One call of the HTTP API. Resolves to the parsed JSON answer (or the text
// with {text: true}); rejects with ApiError(status, the API's error text). A
// 401 asks for the key and retries.
async function api(method, path, body, opts) {
  for (;;) {
    const headers = {};
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers['Authorization'] = 'Bearer ' + key;
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'aidbd did not answer: ' + e.message);
    }
    const text = await resp.text();
    if (resp.status === 401) {
      // A key entered while this call was out: just try it.
      if (sessionStorage.getItem(KEY_STORE) !== key) continue;
      sessionStorage.removeItem(KEY_STORE);
      updateKeyButton();
      await askKey(errorOf(text, 401));
      continue;
    }
    if (!resp.ok) throw new ApiError(resp.status, errorOf(text, resp.status));
    if (opts && opts.text) return text;
    return text ? JSON.parse(text) : null;
  }
}

const coll = (name) => '/collections/' + encodeURIComponent(name);

// ---------------------------------------------------------------- messages

function showError(what, err) {
  const status = err instanceof ApiError && err.status ? ` (HTTP ${err.status})` : '';
  $('error-text').textContent = `${what} failed${status}: ${err.message}`;
  $('error-banner').hidden = false;
  $('notice').hidden = true;
}

function clearError() {
  $('error-banner').hidden = true;
  $('error-text').textContent = '';
}

let noticeTimer = null;
function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { $('notice').hidden = true; }, 8000);
}

// A confirm dialog in the page; resolves to true when confirmed.
let confirmResolve = null;
function confirmAction(title, text, okLabel, danger) {
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  const ok = $('confirm-ok');
  ok.textContent = okLabel;
  ok.className = danger ? 'danger' : 'primary';
  $('confirm-dialog').showModal();
  $('confirm-cancel').focus();
  return new Promise((resolve) => { confirmResolve = resolve; });
}

function closeConfirm(result) {
  if ($('confirm-dialog').open) $('confirm-dialog').close();
  const r = confirmResolve;
  confirmResolve = null;
  if (r) r(result);
}

// Confirms, runs `fn`, shows what it answered or its error, refreshes.
// Polling stops while the dialog is open, and the action waits for a refresh
// already under way (whose calls must not cross it, e.g. GET after DELETE).
async function runAction(title, text, okLabel, danger, fn) {
  stopRefresh();
  const ok = await confirmAction(title, text, okLabel, danger);
  await refreshing.catch(() => {});
  if (!ok) {
    refresh();
    return;
  }
  clearError();
  try {
    const msg = await fn();
    if (msg) showNotice(msg);
  } catch (e) {
    showError(title, e);
  }
  refresh();
}

// ---------------------------------------------------------------- metrics

// Prometheus text format: [{name, labels, value}].
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[2])) !== null) {
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

// histogram_quantile over cumulative buckets [{le, count}] sorted by le.
function quantile(q, buckets) {
  if (!buckets.length) return null;
  const total = buckets[buckets.length - 1].count;
  if (!total) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!isFinite(b.le)) return prevLe;  // beyond the last bound: its bound
      if (b.count === prevCount) return b.le;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / (b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

// The scrapes of the last minute, {t, totals: {route: n}}: rates are taken
// over that minute (or what there is of it).
const RATE_WINDOW_MS = 60000;
let scrapes = [];

// Per-route request stats from a /metrics text.
function requestStats(samples) {
  const routes = new Map();
  const get = (r) => {
    if (!routes.has(r)) routes.set(r, { route: r, total: 0, c4: 0, c5: 0, buckets: [], rate: null });
    return routes.get(r);
  };
  const perColl = {};
  const counters = {};
  for (const s of samples) {
    if (s.name === 'aidb_http_requests_total') {
      const r = get(s.labels.route);
      r.total += s.value;
      const st = Number(s.labels.status);
      if (st >= 400 && st < 500) r.c4 += s.value;
      if (st >= 500) r.c5 += s.value;
    } else if (s.name === 'aidb_http_request_duration_seconds_bucket') {
      get(s.labels.route).buckets.push({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value });
    } else if (s.labels.collection !== undefined) {
      (perColl[s.labels.collection] = perColl[s.labels.collection] || {})[s.name] = s.value;
    } else if (s.name === 'aidb_http_searches_deferred_total') {
      counters['deferred_' + s.labels.reason] = s.value;
    } else {
      counters[s.name] = s.value;
    }
  }
  const now = performance.now();
  scrapes = scrapes.filter((s) => now - s.t <= RATE_WINDOW_MS);
  const ref = scrapes.length && now - scrapes[0].t >= 2000 ? scrapes[0] : null;
  const totals = {};
  for (const r of routes.values()) {
    r.buckets.sort((a, b) => a.le - b.le);
    r.p50 = quantile(0.5, r.buckets);
    r.p95 = quantile(0.95, r.buckets);
    r.p99 = quantile(0.99, r.buckets);
    totals[r.route] = r.total;
    if (ref) r.rate = Math.max(0, r.total - (ref.totals[r.route] || 0)) / ((now - ref.t) / 1000);
  }
  scrapes.push({ t: now, totals });
  const list = [...routes.values()].sort((a, b) => b.total - a.total);
  return { routes: list, perColl, counters };
}

// ---------------------------------------------------------------- chart

// A line chart of samples[key] over time into <svg>, y from 0. Sets
// data-count, data-last-value and data-zero-y (the y of value 0) on the svg.
function drawChart(svg, samples, key, fmt, spanMs, intervalMs) {
  const W = 560, H = 190, L = 70, R = 14, T = 10, B = 26;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  svg.dataset.count = String(samples.length);
  const y0 = H - B;
  svg.dataset.zeroY = String(y0);
  if (!samples.length) {
    svg.dataset.lastValue = '';
    svg.append(svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no samples yet'));
    return;
  }
  const last = samples[samples.length - 1];
  svg.dataset.lastValue = String(last[key]);
  const tEnd = last.unix_ms;
  const tStart = Math.min(samples[0].unix_ms, tEnd - 4 * intervalMs);
  const tFrom = Math.max(tStart, tEnd - spanMs);
  const shown = samples.filter((s) => s.unix_ms >= tFrom);
  let max = 0;
  for (const s of shown) max = Math.max(max, s[key]);
  // A round top: a few steps per power of ten (of 2 for bytes past 1 KiB).
  let top = 4;
  if (max > 0) {
    const bytes = key === 'wal_size_bytes' && max >= 1024;
    const p = bytes ? Math.pow(2, Math.floor(Math.log2(max))) : Math.pow(10, Math.floor(Math.log10(max)));
    const steps = bytes ? [1, 1.5, 2] : [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10];
    top = steps.map((m) => m * p).find((v) => v >= max) || max;
    if (!bytes && top < 4) top = 4;  // four whole steps on the axis
  }
  const x = (t) => L + ((t - tFrom) / Math.max(1, tEnd - tFrom)) * (W - L - R);
  const y = (v) => y0 - (v / top) * (y0 - T);
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    const yy = y(v);
    svg.append(svgEl('line', { class: i ? 'grid' : 'axis', x1: L, x2: W - R, y1: yy, y2: yy }));
    svg.append(svgEl('text', { x: L - 6, y: yy + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  svg.append(svgEl('line', { class: 'axis', x1: L, x2: L, y1: T, y2: y0 }));
  for (let i = 0; i <= 3; i++) {
    const t = tFrom + ((tEnd - tFrom) * i) / 3;
    svg.append(svgEl('text', { x: x(t), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === 3 ? 'end' : 'middle' }, fmtClock(t)));
  }
  const pts = shown.map((s) => `${x(s.unix_ms).toFixed(1)},${y(s[key]).toFixed(1)}`);
  const first = shown[0];
  svg.append(svgEl('polygon', {
    class: 'area',
    points: `${x(first.unix_ms).toFixed(1)},${y0} ${pts.join(' ')} ${x(tEnd).toFixed(1)},${y0}`,
  }));
  svg.append(svgEl('polyline', { class: 'series', points: pts.join(' ') }));
  svg.append(svgEl('circle', { class: 'dot', cx: x(tEnd).toFixed(1), cy: y(last[key]).toFixed(1), r: 3.5 }));
  const title = svgEl('title', {}, `${fmtClock(tEnd)}: ${fmt(last[key])}`);
  svg.append(title);
}

// ---------------------------------------------------------------- views

let view = { name: 'overview' };
let refreshSeq = 0;
let refreshTimer = null;
let refreshing = Promise.resolve();  // the refresh under way
let currentColl = null;  // the collection info shown in the collection view
let efFor = null;  // the collection whose ef_search the input was filled for

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const m = /^\/collections\/([^/]+)$/.exec(h);
  if (m) return { name: 'collection', coll: decodeURIComponent(m[1]) };
  if (h === '/requests') return { name: 'requests' };
  return { name: 'overview' };
}

function showView() {
  view = parseHash();
  for (const v of ['overview', 'collection', 'requests']) $('view-' + v).hidden = view.name !== v;
  $('nav-collections').classList.toggle('active', view.name !== 'requests');
  $('nav-requests').classList.toggle('active', view.name === 'requests');
  if (view.name === 'collection') {
    if (efFor !== view.coll) {
      $('search-results').hidden = true;
      $('search-status').textContent = '';
      $('search-vector').value = '';
      $('search-point').value = '';
      $('search-filter').value = '';
    }
    $('coll-title').textContent = view.coll;
    document.title = view.coll + ' · AIDB console';
  } else {
    document.title = 'AIDB console';
  }
  clearError();
  refresh();
}

function stopRefresh() {
  clearTimeout(refreshTimer);
  ++refreshSeq;  // what is under way neither renders nor reschedules
}

function refresh() {
  refreshing = refreshOnce();
  return refreshing;
}

async function refreshOnce() {
  clearTimeout(refreshTimer);
  const seq = ++refreshSeq;
  const v = view;
  try {
    if (v.name === 'overview') await refreshOverview(seq);
    else if (v.name === 'collection') await refreshCollection(seq, v.coll);
    else await refreshRequests(seq);
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) {
    if (seq === refreshSeq) {
      if (v.name === 'collection' && e.status === 404) {
        showError('Loading collection ' + v.coll, e);
      } else {
        showError('Refresh', e);
      }
    }
  }
  if (seq === refreshSeq) refreshTimer = setTimeout(refresh, REFRESH_MS);
}

async function loadMetrics() {
  return requestStats(parseMetrics(await api('GET', '/metrics', undefined, { text: true })));
}

function cell(field, value, text, cls) {
  return el('td', { 'data-field': field, 'data-value': String(value), class: cls, text });
}

async function refreshOverview(seq) {
  const [list, stats] = await Promise.all([api('GET', '/collections'), loadMetrics()]);
  if (seq !== refreshSeq) return;
  renderDaemon(stats);
  const tbody = $('collections-table').tBodies[0];
  const rows = [];
  for (const c of list) {  // a bare array, as the original server answered
    const m = stats.perColl[c.name] || {};
    const secs = m.aidb_wal_seconds_since_truncate;
    rows.push(el('tr', { 'data-collection': c.name },
      el('td', { 'data-field': 'name', 'data-value': c.name },
        el('a', { href: '#/collections/' + encodeURIComponent(c.name), text: c.name })),
      cell('len', c.len, fmtInt(c.len), 'num'),
      cell('dim', c.dim, fmtInt(c.dim), 'num'),
      cell('metric', c.metric, c.metric),
      cell('index', indexText(c), indexText(c)),
      cell('wal_size_bytes', c.wal_size_bytes, fmtBytes(c.wal_size_bytes), 'num'),
      cell('wal_bytes_since_truncate', c.wal_bytes_since_truncate, fmtBytes(c.wal_bytes_since_truncate), 'num'),
      cell('wal_seconds_since_truncate', secs === undefined ? '' : secs, fmtDuration(secs), 'num'),
      cell('wal_last_truncate', c.wal_last_truncate || '', fmtTime(c.wal_last_truncate))));
  }
  tbody.replaceChildren(...rows);
  $('collections-empty').hidden = rows.length > 0;
  renderSummary(stats);
}

function renderDaemon(stats) {
  const start = stats.counters.aidb_process_start_time_seconds;
  const up = start ? fmtDuration(Date.now() / 1000 - start) : '';
  $('daemon-info').textContent = (daemonVersion ? 'aidbd ' + daemonVersion : 'aidbd') + (up ? ' · up ' + up : '');
}

function renderSummary(stats) {
  let total = 0, rate = null, c5 = 0, c4 = 0;
  for (const r of stats.routes) {
    total += r.total;
    c4 += r.c4;
    c5 += r.c5;
    if (r.rate !== null) rate = (rate || 0) + r.rate;
  }
  const search = stats.routes.find((r) => r.route === '/collections/:name/search');
  const card = (label, value, id) => el('div', { class: 'card', id },
    el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }));
  $('request-summary').replaceChildren(
    card('Requests / s (last minute)', rate === null ? '…' : rate.toFixed(1), 'sum-rate'),
    card('Requests since start', fmtInt(total), 'sum-total'),
    card('4xx / 5xx answers', `${fmtInt(c4)} / ${fmtInt(c5)}`, 'sum-errors'),
    card('Search p50', search ? fmtSeconds(search.p50) : '—', 'sum-search-p50'),
    card('Search p99', search ? fmtSeconds(search.p99) : '—', 'sum-search-p99'));
}

async function refreshRequests(seq) {
  const stats = await loadMetrics();
  if (seq !== refreshSeq) return;
  renderDaemon(stats);
  const rows = stats.routes.map((r) => el('tr', { 'data-route': r.route },
    el('td', { class: 'mono', text: r.route }),
    el('td', { class: 'num', text: fmtInt(r.total) }),
    el('td', { class: 'num', text: r.rate === null ? '…' : r.rate.toFixed(2) }),
    el('td', { class: 'num', text: fmtInt(r.c4) }),
    el('td', { class: 'num', text: fmtInt(r.c5) }),
    el('td', { class: 'num', text: fmtSeconds(r.p50) }),
    el('td', { class: 'num', text: fmtSeconds(r.p95) }),
    el('td', { class: 'num', text: fmtSeconds(r.p99) })));
  $('requests-table').tBodies[0].replaceChildren(...rows);
  const c = stats.counters;
  const item = (k, v) => el('div', {}, el('dt', { text: k }), el('dd', { text: v }));
  $('search-counters').replaceChildren(
    item('Answered on an event loop', fmtInt(c.aidb_http_searches_on_loop_total || 0)),
    item('Deferred: shape', fmtInt(c.deferred_shape || 0)),
    item('Deferred: busy', fmtInt(c.deferred_busy || 0)),
    item('Deferred: payload', fmtInt(c.deferred_payload || 0)));
}

async function refreshCollection(seq, name) {
  const [info, hist, snaps, stats] = await Promise.all([
    api('GET', coll(name)),
    api('GET', coll(name) + '/history'),
    api('GET', coll(name) + '/snapshots'),
    loadMetrics(),
  ]);
  if (seq !== refreshSeq) return;
  renderDaemon(stats);
  currentColl = info;
  const m = stats.perColl[name] || {};
  const item = (k, field, value, text) => el('div', {},
    el('dt', { text: k }), el('dd', { 'data-field': field, 'data-value': String(value), text }));
  const secs = m.aidb_wal_seconds_since_truncate;
  const items = [
    item('Points', 'len', info.len, fmtInt(info.len)),
    item('Dim', 'dim', info.dim, fmtInt(info.dim)),
    item('Metric', 'metric', info.metric, info.metric),
    item('Index', 'index', indexText(info), info.index),
  ];
  if (info.hnsw) {
    items.push(item('HNSW m', 'hnsw_m', info.hnsw.m, String(info.hnsw.m)));
    items.push(item('ef_construction', 'ef_construction', info.hnsw.ef_construction, String(info.hnsw.ef_construction)));
    items.push(item('ef_search', 'ef_search', info.hnsw.ef_search,
      info.hnsw.ef_search ? String(info.hnsw.ef_search) : '0 (adapts to top_k)'));
  }
  if (info.ivf) {
    const auto = (v, what) => (v ? String(v) : `0 (${what})`);
    items.push(item('IVF lists', 'ivf_nlist', info.ivf.nlist, auto(info.ivf.nlist, 'automatic')));
    items.push(item('Lists probed', 'ivf_nprobe', info.ivf.nprobe, auto(info.ivf.nprobe, 'automatic')));
    items.push(item('Re-ranked', 'ivf_rerank', info.ivf.rerank, auto(info.ivf.rerank, 'max(100, 10 x top_k)')));
  }
  items.push(
    item('Durability', 'durability', info.durability, info.durability),
    item('WAL size', 'wal_size_bytes', info.wal_size_bytes, fmtBytes(info.wal_size_bytes)),
    item('WAL bytes since truncation', 'wal_bytes_since_truncate', info.wal_bytes_since_truncate, fmtBytes(info.wal_bytes_since_truncate)),
    item('Since truncation', 'wal_seconds_since_truncate', secs === undefined ? '' : secs, fmtDuration(secs)),
    item('Last truncation', 'wal_last_truncate', info.wal_last_truncate || '', fmtTime(info.wal_last_truncate)),
    item('Last LSN', 'wal_last_lsn', info.wal_last_lsn, fmtInt(info.wal_last_lsn)));
  $('coll-info').replaceChildren(...items);

  const every = hist.interval_seconds * 1000;
  const span = every * hist.capacity;
  drawChart($('chart-wal'), hist.samples, 'wal_size_bytes', fmtBytes, span, every);
  drawChart($('chart-points'), hist.samples, 'points', fmtInt, span, every);
  $('chart-wal').classList.add('wal');
  $('chart-points').classList.add('points');
  $('chart-note').textContent =
    `${hist.samples.length} samples, one every ${hist.interval_seconds} s and one after each snapshot, restore and compaction (kept by aidbd in memory: the last ${hist.capacity}).`;

  const ef = efOf(info);
  $('ef-input').disabled = ef === null;
  $('action-ef').disabled = ef === null;
  $('action-ef').title = ef === null ? 'ef_search applies to HNSW and IVF collections only'
    : info.ivf ? 'for IVF, ef_search is the number of lists a search probes' : '';
  if (efFor !== name) {
    efFor = name;
    $('ef-input').value = ef === null ? '' : String(ef);
  }

  const rows = snaps.snapshots.slice().reverse().map((s) => el('tr', { 'data-file': s.file },
    el('td', { class: 'mono', text: s.file, title: s.path }),
    el('td', { class: 'num', 'data-field': 'lsn', text: fmtInt(s.lsn) }),
    el('td', { class: 'num', text: fmtInt(s.count) }),
    el('td', { class: 'num', 'data-value': String(s.size_bytes), text: fmtBytes(s.size_bytes) }),
    el('td', { text: fmtTime(s.created) }),
    el('td', {}, el('button', { type: 'button', class: 'small restore', 'data-file': s.file, text: 'Restore',
      onclick: () => restore(name, s) }))));
  $('snapshots-table').tBodies[0].replaceChildren(...rows);
  $('snapshots-empty').hidden = rows.length > 0;
  $('snapshots-table').hidden = rows.length === 0;
}

// ---------------------------------------------------------------- actions

function snapshot() {
  const name = view.coll;
  runAction('Take snapshot', `Take a snapshot of "${name}"? It writes a checkpoint and truncates the WAL.`,
    'Take snapshot', false, async () => {
      const r = await api('POST', coll(name) + '/snapshot', {});
      return `Snapshot ${r.snapshot} taken: LSN ${r.lsn}, ${fmtInt(r.count)} points, ${fmtBytes(r.size_bytes)}; WAL now ${fmtBytes(r.wal_size_bytes)}.`;
    });
}

function restore(name, s) {
  runAction('Restore snapshot',
    `Restore "${name}" from ${s.file} (LSN ${s.lsn}, ${fmtInt(s.count)} points)? Newer WAL records are replayed on top of it.`,
    'Restore', true, async () => {
      const r = await api('POST', coll(name) + '/restore', { snapshot: s.file });
      return `Restored "${name}" from ${s.file}: ${fmtInt(r.len)} points.`;
    });
}

function compact() {
  const name = view.coll;
  runAction('Compact', `Compact "${name}"? It rebuilds the index without deleted points.`, 'Compact', false,
    async () => {
      // true once an HNSW index is rebuilt, false for an exact index.
      const compacted = await api('POST', coll(name) + '/compact', {});
      const info = await api('GET', coll(name));
      return compacted ? `Compacted "${name}": ${fmtInt(info.len)} points.`
        : `Nothing to compact in "${name}" (exact index): ${fmtInt(info.len)} points.`;
    });
}

// The default ef_search of a collection (IVF: lists probed), null for flat.
function efOf(info) {
  if (info.hnsw) return info.hnsw.ef_search;
  if (info.ivf) return info.ivf.nprobe;
  return null;
}

function setEf() {
  const name = view.coll;
  const raw = $('ef-input').value.trim();
  const v = Number(raw);
  if (raw === '' || !Number.isInteger(v) || v < 0) {
    showError('Set ef_search', new ApiError(0, 'ef_search must be a non-negative integer'));
    return;
  }
  runAction('Set ef_search', `Set the default ef_search of "${name}" to ${v}?`, 'Set ef_search', false,
    async () => {
      // true, or false for an exact index (no ef_search to set).
      const set = await api('POST', coll(name) + '/params', { ef_search: v });
      const info = await api('GET', coll(name));
      const ef = efOf(info);
      if (!set || ef === null) return `"${name}" has an exact index: no ef_search to set.`;
      $('ef-input').value = String(ef);
      return `ef_search of "${name}" is now ${ef}${info.ivf ? ' (lists probed)' : ''}.`;
    });
}

function drop() {
  const name = view.coll;
  runAction('Drop collection', `Drop "${name}" with all its points, WAL and snapshots? This cannot be undone.`,
    'Drop collection', true, async () => {
      await api('DELETE', coll(name));
      efFor = null;
      location.hash = '#/';
      view = parseHash();  // before hashchange: runAction's refresh is the list's
      return `Dropped "${name}".`;
    });
}

// Puts the vector of the point whose id is in the box into the query box;
// resolves to whether it did.
async function loadPointVector() {
  const name = view.coll;
  const id = $('search-point').value.trim();
  clearError();
  if (!id) {
    showError('Loading the point', new ApiError(0, 'enter a point id'));
    return false;
  }
  try {
    const p = await api('GET', coll(name) + '/points/' + encodeURIComponent(id));
    $('search-vector').value = JSON.stringify(p.vector);
    $('search-status').textContent = `Vector of point ${p.id} loaded.`;
    return true;
  } catch (e) {
    showError('Loading point ' + id, e);
    return false;
  }
}

async function runSearch() {
  const name = view.coll;
  clearError();
  let vector;
  let filter;
  try {
    vector = JSON.parse($('search-vector').value);
    if (!Array.isArray(vector)) throw new Error('not an array');
  } catch (e) {
    showError('Search', new ApiError(0, 'the query vector must be a JSON array of numbers'));
    return;
  }
  const ftext = $('search-filter').value.trim();
  if (ftext) {
    try {
      filter = JSON.parse(ftext);
    } catch (e) {
      showError('Search', new ApiError(0, 'the filter is not valid JSON: ' + e.message));
      return;
    }
  }
  const body = { vector, top_k: Number($('search-k').value) || 10, with_payload: true };
  if (filter !== undefined) body.filter = filter;
  const t0 = performance.now();
  $('search-status').textContent = 'Searching…';
  try {
    const r = await api('POST', coll(name) + '/search', body);
    const ms = performance.now() - t0;
    const rows = r.results.map((h, i) => el('tr', { 'data-id': h.id },
      el('td', { class: 'num', text: String(i + 1) }),
      el('td', { class: 'mono', 'data-field': 'id' },
        el('button', { type: 'button', class: 'linkish', title: 'Search with this point\'s vector', text: h.id,
          onclick: () => { $('search-point').value = h.id; loadPointVector().then((ok) => ok && runSearch()); } })),
      el('td', { class: 'num', 'data-field': 'score', 'data-value': String(h.score), text: String(h.score) }),
      el('td', { class: 'payload' }, el('pre', { text: h.payload === null ? '—' : JSON.stringify(h.payload) }))));
    $('search-results').tBodies[0].replaceChildren(...rows);
    $('search-results').hidden = false;
    $('search-status').textContent = `${r.results.length} hits in ${ms.toFixed(1)} ms (round trip).`;
  } catch (e) {
    $('search-status').textContent = '';
    $('search-results').hidden = true;
    showError('Search', e);
  }
}

// ---------------------------------------------------------------- start

let daemonVersion = '';

function init() {
  $('error-close').addEventListener('click', clearError);
  $('forget-key').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORE);
    updateKeyButton();
    refresh();
  });
  $('key-ok').addEventListener('click', submitKey);
  $('key-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') submitKey(); });
  // The key dialog cannot be dismissed: every call waits for a key.
  $('key-dialog').addEventListener('cancel', (e) => e.preventDefault());
  $('confirm-ok').addEventListener('click', () => closeConfirm(true));
  $('confirm-cancel').addEventListener('click', () => closeConfirm(false));
  $('confirm-dialog').addEventListener('cancel', (e) => {
    e.preventDefault();
    closeConfirm(false);
  });
  $('action-snapshot').addEventListener('click', snapshot);
  $('action-compact').addEventListener('click', compact);
  $('action-ef').addEventListener('click', setEf);
  $('action-drop').addEventListener('click', drop);
  $('search-load').addEventListener('click', loadPointVector);
  $('search-run').addEventListener('click', runSearch);
  window.addEventListener('hashchange', showView);
  updateKeyButton();
  // /health needs no key: the version for the header (its body is just `ok`).
  fetch('/health', { cache: 'no-store' })
    .then((r) => { daemonVersion = r.headers.get('AIDB-Version') || ''; })
    .catch(() => {});
  showView();
}

document.addEventListener('DOMContentLoaded', init);
