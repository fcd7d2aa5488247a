/* The gf-svc operator console: one page, plain ES2020, no framework and no build step.
 * It reads the live stream (GET /console/api/stream, server-sent events read with fetch so
 * that it can carry the bearer token) and the API through the same-origin ingress. */
'use strict';

(() => {
  /* ---- constants ------------------------------------------------------------------------ */

  const STAGES = ['claimed', 'prepared', 'decided', 'finalized', 'stored'];
  /* Every stage a tx frame may name, in the order a page shows them. */
  const ALL_STAGES = ['claimed', 'refused', 'prepared', 'decided', 'finalized', 'stored'];
  const MAX_ROWS = 200;
  const MAX_EVENTS = 100;
  const STUCK_MS = 1000;            /* started but not finalized on gxp for longer: stuck */
  const TICK_MS = 250;              /* how often stuck rows are re-evaluated */
  const CHART_WINDOW_S = 300;       /* the charts show the last 5 minutes */
  const RETRY_FIRST_MS = 1000;      /* stream reconnection: 1 s, 2 s, 4 s, ... at most 10 s */
  const RETRY_MAX_MS = 10000;
  const WATCH_GAP_MS = 1000;        /* watch reads start at most once a second (a burst of frames) */
  const MARKETPLACE_PAGE = 1000;    /* marketplace rows read per request when looking for an item */
  const MARKETPLACE_PAGES_MAX = 200;
  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const KEY_TOKEN = 'gf.console.token';
  const KEY_NAME = 'gf.console.name';
  const KEY_EXPIRES = 'gf.console.expiresAt';
  const KEY_WATCH = 'gf.console.watch';

  /* ---- state ---------------------------------------------------------------------------- */

  const txs = new Map();            /* correlation id → record of the live table */
  const pendingCids = new Set();    /* rows whose state may change with time alone */
  let skewMs = 0;                   /* server clock − browser clock, from hello's serverTime */
  let streamGen = 0;                /* bumped to stop the current stream loop */
  let streamAbort = null;
  let txPage = null;                /* the open transaction page, or null */
  let expiryTimer = 0;
  const watch = { userId: null, itemId: null, runs: {} };
  const charts = [];
  const series = { t: [], buys: [], add: [], p50: [], p99: [], lag: [] };

  /* ---- small DOM helpers ---------------------------------------------------------------- */

  const $ = (sel) => document.querySelector(sel);

  /* An element with attributes (strings; a false/null value is skipped) and children. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  /* A link to a transaction's page. */
  function cidLink(cid) {
    return el('a', { class: 'mono cid', href: `#/tx/${encodeURIComponent(cid)}`, title: cid }, cid);
  }

  /* The UTC clock time of an ISO-8601 string: HH:MM:SS.mmm. */
  function clock(iso) {
    return typeof iso === 'string' && iso.length >= 23 ? iso.slice(11, 23) : String(iso ?? '');
  }

  /* An API error for a panel: its message and, to look it up in the logs, its correlation id. */
  function errorText(e) {
    return e.correlationId ? `${e.message} (correlation id ${e.correlationId})` : e.message;
  }

  function fmt(v) {
    return v === null || v === undefined ? 'unknown' : String(v);
  }

  const serverNow = () => Date.now() + skewMs;

  /* Learns the server's clock from a time it just sent (the stream's latency is small). */
  function learnSkew(iso) {
    const t = Date.parse(iso);
    if (Number.isFinite(t)) skewMs = t - Date.now();
  }

  /* ---- session -------------------------------------------------------------------------- */

  const session = {
    get token() { return sessionStorage.getItem(KEY_TOKEN); },
    get name() { return sessionStorage.getItem(KEY_NAME) || ''; },
    save(token, name, expiresAt) {
      sessionStorage.setItem(KEY_TOKEN, token);
      sessionStorage.setItem(KEY_NAME, name);
      if (expiresAt) sessionStorage.setItem(KEY_EXPIRES, expiresAt);
    },
    drop() {
      for (const k of [KEY_TOKEN, KEY_NAME, KEY_EXPIRES]) sessionStorage.removeItem(k);
    },
    expiresAt() { return Date.parse(sessionStorage.getItem(KEY_EXPIRES) || ''); },
  };

  /* ---- the API -------------------------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, code, message, correlationId) {
      super(message);
      this.status = status;
      this.code = code || null;
      this.correlationId = correlationId || null;
    }
  }

  async function readJson(resp) {
    const text = await resp.text();
    try { return text ? JSON.parse(text) : null; } catch { return null; }
  }

  /* The error of a non-2xx answer: the server's {"message","error","correlationId"}. */
  async function errorOf(resp) {
    const b = await readJson(resp);
    const msg = b && typeof b.message === 'string' ? b.message : `HTTP ${resp.status}`;
    return new ApiError(resp.status, b && b.error, msg, b && b.correlationId);
  }

  /* One call to the API. A 401/403 on an authorized call signs out with the server's message. */
  async function api(path, { method = 'GET', body, auth = true } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth) headers.Authorization = `Bearer ${session.token}`;
    let resp;
    try {
      resp = await fetch(path, {
        method, headers, cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'unreachable', `cannot reach the server (${e.message})`);
    }
    if (!resp.ok) {
      const err = await errorOf(resp);
      if (auth && (resp.status === 401 || resp.status === 403)) signOut(err.message);
      throw err;
    }
    return readJson(resp);
  }

  /* ---- sign-in and sign-out ------------------------------------------------------------- */

  function showLogin(message) {
    $('#app').hidden = true;
    $('#login').hidden = false;
    $('[data-testid="signed-in"]').hidden = true;
    $('[data-testid="sign-out"]').hidden = true;
    const p = $('[data-testid="login-error"]');
    p.textContent = message || '';
    p.hidden = !message;
    const form = $('[data-testid="login-form"]');
    form.elements.password.value = '';
    (form.elements.name.value ? form.elements.password : form.elements.name).focus();
  }

  async function onLoginSubmit(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const name = form.elements.name.value.trim();
    const password = form.elements.password.value;
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const r = await api('/auth/login', { method: 'POST', body: { name, password }, auth: false });
      if (!r || typeof r.token !== 'string') throw new ApiError(0, null, 'the server sent no token');
      session.save(r.token, name, r.expiresAt);
      startApp();
    } catch (e) {
      showLogin(e.message);
    } finally {
      button.disabled = false;
    }
  }

  /* Drops the token and everything read with it, then asks for a sign-in. */
  function signOut(message) {
    session.drop();
    clearTimeout(expiryTimer);
    stopStream();
    resetData();
    setConn('offline', 'offline');
    showLogin(message);
  }

  /* The signed-in page: header, stream, the view of the current address. */
  function startApp() {
    const exp = session.expiresAt();
    if (Number.isFinite(exp)) {
      if (exp <= Date.now()) return signOut('your session has expired: sign in again');
      clearTimeout(expiryTimer);
      expiryTimer = setTimeout(() => signOut('your session has expired: sign in again'),
        Math.min(exp - Date.now(), 2 ** 31 - 1));
    }
    $('#login').hidden = true;
    $('#app').hidden = false;
    const who = $('[data-testid="signed-in"]');
    who.textContent = session.name;
    who.hidden = false;
    $('[data-testid="sign-out"]').hidden = false;
    ensureCharts();
    startStream();
    route();
    refreshWatch('user');
    refreshWatch('item');
  }

  /* Forgets what the stream brought (a new sign-in gets a fresh hello). */
  function resetData() {
    txs.clear();
    pendingCids.clear();
    $('#tx-rows').replaceChildren();
    $('#event-list').replaceChildren();
    updateCounts();
    for (const k of Object.keys(series)) series[k].length = 0;
    for (const c of charts) c.u.setData(c.data());
  }

  /* ---- the live stream: fetch + a server-sent events parser ----------------------------- */

  function setConn(state, text) {
    const e = $('[data-testid="conn-state"]');
    e.dataset.state = state;
    e.textContent = text;
  }

  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

  function stopStream() {
    streamGen++;
    if (streamAbort) streamAbort.abort();
    streamAbort = null;
  }

  /* Reads the stream until it ends or fails, then again after 1 s, 2 s, ... up to 10 s. */
  async function startStream() {
    stopStream();
    const gen = streamGen;
    const state = { delay: RETRY_FIRST_MS };
    let first = true;
    while (gen === streamGen) {
      setConn(first ? 'connecting' : 'reconnecting', first ? 'connecting…' : 'reconnecting…');
      first = false;
      const ctrl = new AbortController();
      streamAbort = ctrl;
      try {
        const resp = await fetch('/console/api/stream', {
          headers: { Accept: 'text/event-stream', Authorization: `Bearer ${session.token}` },
          cache: 'no-store', signal: ctrl.signal,
        });
        if (resp.status === 401 || resp.status === 403) {
          if (gen === streamGen) signOut((await errorOf(resp)).message);
          return;
        }
        if (!resp.ok || !resp.body) throw await errorOf(resp);
        if (gen !== streamGen) return;
        setConn('live', 'live');
        $('[data-testid="conn-state"]').title = '';
        await readSse(resp.body, gen, (name, data) => onFrame(name, data, state));
      } catch (e) {
        if (gen !== streamGen) return; /* stopped on purpose */
        $('[data-testid="conn-state"]').title = `the stream failed: ${e.message}`;
      }
      if (gen !== streamGen) return;
      await waitRetry(gen, state.delay);
      state.delay = Math.min(state.delay * 2, RETRY_MAX_MS);
    }
  }

  /* Waits before a reconnection, counting down in the header. */
  async function waitRetry(gen, ms) {
    for (let left = ms; left > 0 && gen === streamGen; left -= 1000) {
      setConn('reconnecting', `reconnecting in ${Math.ceil(left / 1000)} s`);
      await sleep(Math.min(1000, left));
    }
  }

  /* Parses text/event-stream: frames end at a blank line; "event:" names one, "data:" carries
   * it (several data lines are joined by newlines, as EventSource does); ":" is a comment. */
  async function readSse(body, gen, dispatch) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let rest = '';
    let name = '';
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (gen !== streamGen) { reader.cancel().catch(() => {}); return; }
      if (done) return;
      const lines = (rest + decoder.decode(value, { stream: true })).split('\n');
      rest = lines.pop();
      for (let line of lines) {
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length) dispatch(name || 'message', data.join('\n'));
          name = '';
          data = [];
          continue;
        }
        if (line[0] === ':') continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let v = c < 0 ? '' : line.slice(c + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'event') name = v;
        else if (field === 'data') data.push(v);
      }
    }
  }

  /* One frame of the stream. A frame that is not JSON is skipped; a frame this page fails to
   * show is reported on the browser's console, and the stream goes on. */
  function onFrame(name, text, state) {
    let d;
    try { d = JSON.parse(text); } catch { return; }
    if (!d || typeof d !== 'object') return;
    try {
      switch (name) {
        case 'hello': onHello(d); state.delay = RETRY_FIRST_MS; break;
        case 'txs': for (const tx of Array.isArray(d) ? d : []) applyTx(tx); break;
        case 'events':
          for (const ev of Array.isArray(d) ? d : []) addEvent(ev);
          updateCounts();
          break;
        case 'stats': onStats(d); break;
        default: break; /* a newer server's event: ignored */
      }
    } catch (e) {
      console.error(`console: a "${name}" frame was not shown`, e);
    }
  }

  /* The first frame: the newest transactions (oldest first) and stored events. */
  function onHello(h) {
    learnSkew(h.serverTime);
    for (const tx of Array.isArray(h.recent) ? h.recent : []) {
      if (tx && tx.stage) applyTx(tx);
      else for (const f of stageFrames(tx)) applyTx(f);
    }
    $('#event-list').replaceChildren();
    const evs = (Array.isArray(h.events) ? h.events : []).slice();
    evs.sort((a, b) => (Date.parse(a.at) || 0) - (Date.parse(b.at) || 0));
    for (const ev of evs) addEvent(ev);
    updateCounts();
    if (h.replica) $('[data-testid="conn-state"]').title = `served by ${h.replica}`;
  }

  /* A transaction given whole, {..., "stages": {"claimed": {"at","detail"}, ...}} or
   * {"stages": [{"stage","at","detail"}, ...]}, as one frame per stage (tolerated in hello). */
  function stageFrames(tx) {
    if (!tx || !tx.stages || typeof tx.stages !== 'object') return [];
    const list = Array.isArray(tx.stages) ? tx.stages
      : Object.entries(tx.stages).map(([stage, v]) => ({ ...v, stage }));
    return list.map((v) => ({ ...tx, stages: undefined, ...v }));
  }

  /* ---- the live transactions table ------------------------------------------------------ */

  /* A tx frame: creates or updates the row of its transaction. */
  function applyTx(tx) {
    if (!tx || typeof tx.correlationId !== 'string' || !ALL_STAGES.includes(tx.stage)) return;
    const at = Date.parse(tx.at);
    if (!Number.isFinite(at)) return;
    let rec = txs.get(tx.correlationId);
    if (!rec) rec = addRecord(tx.correlationId);
    mergeFields(rec, tx);
    rec.stages[tx.stage] = { at, iso: tx.at, detail: tx.detail || {} };
    renderRow(rec);
    if (txPage && txPage.cid === tx.correlationId &&
        !txPage.live.some((f) => f.stage === tx.stage && f.at === tx.at)) {
      txPage.live.push(tx); /* a reconnection's hello may bring a frame again */
      renderTxPage();
    }
    if (tx.stage === 'finalized') {
      if (watch.userId !== null && rec.userId === watch.userId) refreshWatch('user');
      if (watch.itemId !== null && rec.itemId === watch.itemId) refreshWatch('item');
    }
  }

  /* Takes what a frame knows of the transaction. A frame sent before its claim was heard may
   * say kind "", user 0, amount 0 (the service that sent it did not know): never over a value. */
  function mergeFields(rec, tx) {
    if (typeof tx.kind === 'string' && tx.kind !== '') rec.kind = tx.kind;
    if (Number.isSafeInteger(tx.userId) && tx.userId > 0) rec.userId = tx.userId;
    if (Number.isSafeInteger(tx.itemId) && tx.itemId > 0) rec.itemId = tx.itemId;
    if (Number.isSafeInteger(tx.amount) && (tx.amount > 0 || rec.amount === null)) rec.amount = tx.amount;
  }

  /* A new row at the top; the oldest row goes past MAX_ROWS. */
  function addRecord(cid) {
    const cells = {};
    const row = el('tr', { 'data-cid': cid, 'data-state': 'live' });
    row.append(el('td', {}, cidLink(cid)));
    const claimedAt = el('td', { class: 'mono' });
    const kind = el('td');
    const user = el('td', { class: 'num' });
    const item = el('td', { class: 'num' });
    const amount = el('td', { class: 'num' });
    row.append(claimedAt, kind, user, item, amount);
    for (const s of STAGES) {
      cells[s] = el('td', { class: 'stage num', 'data-stage': s });
      row.append(cells[s]);
    }
    const label = el('td', { class: 'state' });
    row.append(label);
    const rec = { cid, kind: null, userId: null, itemId: null, amount: null, stages: {},
      row, cells, label, claimedAt, kindCell: kind, user, item, amountCell: amount };
    txs.set(cid, rec);
    const body = $('#tx-rows');
    body.prepend(row);
    while (body.rows.length > MAX_ROWS) {
      const last = body.rows[body.rows.length - 1];
      txs.delete(last.dataset.cid);
      pendingCids.delete(last.dataset.cid);
      last.remove();
    }
    updateCounts();
    return rec;
  }

  /* Writes a record's fields and stage cells into its row. */
  function renderRow(rec) {
    rec.kindCell.textContent = fmt(rec.kind);
    rec.user.textContent = rec.userId ?? '';
    rec.item.textContent = rec.itemId ?? '';
    rec.amountCell.textContent = rec.amount ?? '';
    const claimed = rec.stages.claimed;
    rec.claimedAt.textContent = claimed ? clock(claimed.iso) : '';
    for (const s of STAGES) {
      const cell = rec.cells[s];
      const st = rec.stages[s];
      if (!st) { cell.textContent = ''; cell.removeAttribute('data-reached'); continue; }
      cell.dataset.reached = 'true';
      cell.textContent = claimed ? `${Math.round(st.at - claimed.at)} ms` : '✓';
      cell.title = `${st.iso}${describeDetail(s, st.detail)}`;
    }
    renderState(rec);
  }

  /* The detail of a stage, for a tooltip or a page: " COMMITTED via replication", ... */
  function describeDetail(stage, d) {
    if (!d) return '';
    switch (stage) {
      case 'prepared': return d.status ? ` ${d.status}` : '';
      case 'decided': return d.outcome ? ` ${d.outcome}` : '';
      case 'finalized': return `${d.status ? ` ${d.status}` : ''}${d.source ? ` via ${d.source}` : ''}`;
      case 'stored': return d.event ? ` ${d.event}` : '';
      case 'refused': return d.error ? ` ${d.error}` : '';
      default: return '';
    }
  }

  /* What a transaction's row says about it, at server time now. Stuck (started more than a
   * second ago and not finalized on gxp yet) comes first, even after a failed decision: that is
   * what needs an operator. A row once stuck and then finalized says "resolved" (by whom). */
  function stateOf(rec, now) {
    const s = rec.stages;
    const failed = outcomeOf(s) === 'failed';
    if (s.refused) return { state: 'failed', label: `refused${describeDetail('refused', s.refused.detail)}` };
    const since = pendingSince(rec);
    if (since !== null && now - since > STUCK_MS) {
      rec.wasStuck = true;
      const label = `pending ${Math.floor((now - since) / 1000)}s`;
      return { state: 'stuck', label: failed ? `${label} · failed` : label };
    }
    if (s.finalized && (rec.wasStuck || s.finalized.detail.source === 'resolver')) {
      const by = s.finalized.detail.source ? ` by ${s.finalized.detail.source}` : '';
      return { state: 'resolved', label: `resolved${by}${failed ? ' · failed' : ''}` };
    }
    if (failed) return { state: 'failed', label: 'failed' };
    if (s.stored) return { state: 'stored', label: 'stored' };
    if (s.finalized) return { state: 'finalized', label: 'finalized' };
    return { state: 'live', label: '' };
  }

  /* When a transaction that goes to gxp (a non-zero amount) started and is not finalized yet:
   * the earliest stage heard; null for a finalized, refused or free one. */
  function pendingSince(rec) {
    const s = rec.stages;
    if (s.finalized || s.refused || rec.amount === 0) return null;
    let t = null;
    for (const st of ['claimed', 'prepared', 'decided']) {
      if (s[st] && (t === null || s[st].at < t)) t = s[st].at;
    }
    return t;
  }
  const isPending = (rec) => pendingSince(rec) !== null;

  /* "succeeded" or "failed" once known (the decision, or gxp's finalization), else null. */
  function outcomeOf(s) {
    const f = s.finalized && s.finalized.detail;
    if (f && (f.outcome === 'succeeded' || f.outcome === 'failed')) return f.outcome;
    if (f && f.status === 'COMMITTED') return 'succeeded';
    if (f && f.status === 'ABORTED') return 'failed';
    const d = s.decided && s.decided.detail.outcome;
    return d === 'succeeded' || d === 'failed' ? d : null;
  }

  /* The row's data-state, class and label; rows that may become stuck are watched by tick. */
  function renderState(rec) {
    const { state, label } = stateOf(rec, serverNow());
    if (rec.row.dataset.state !== state) {
      rec.row.dataset.state = state;
      rec.row.className = `tx-${state}`;
    }
    if (rec.label.textContent !== label) rec.label.textContent = label;
    const s = rec.stages;
    const outcome = outcomeOf(s);
    if (outcome) rec.row.dataset.outcome = outcome;
    if (isPending(rec)) pendingCids.add(rec.cid); else pendingCids.delete(rec.cid);
  }

  /* Every 250 ms: prepared-not-finalized rows become stuck, and their counters move. */
  function tick() {
    for (const cid of pendingCids) {
      const rec = txs.get(cid);
      if (rec) renderState(rec); else pendingCids.delete(cid);
    }
  }

  function updateCounts() {
    const n = txs.size;
    $('[data-testid="tx-count"]').textContent = n ? `(${n}${n >= MAX_ROWS ? ', the newest' : ''})` : '';
    $('#tx-empty').hidden = n > 0;
    const e = $('#event-list').children.length;
    $('[data-testid="event-count"]').textContent = e ? `(${e})` : '';
  }

  /* ---- the event stream panel ----------------------------------------------------------- */

  /* One stored event at the top of the list; at most MAX_EVENTS kept. */
  function addEvent(ev) {
    if (!ev || typeof ev.name !== 'string') return;
    const list = $('#event-list');
    const li = el('li', { 'data-cid': ev.correlationId || null, 'data-event': ev.name },
      el('span', { class: 'mono time' }, clock(ev.at)), ' ',
      el('span', { class: 'event-name' }, ev.name), ' ',
      el('span', { class: 'muted' }, ev.userId === null || ev.userId === undefined ? 'no user' : `user ${ev.userId}`),
      ' ', typeof ev.correlationId === 'string' ? cidLink(ev.correlationId) : null);
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  }

  /* ---- stats: figures and charts -------------------------------------------------------- */

  function onStats(s) {
    $('[data-testid="dlq"]').textContent = fmt(s.dlq);
    $('[data-testid="dlq"]').classList.toggle('alert', typeof s.dlq === 'number' && s.dlq > 0);
    $('[data-testid="relay-backlog"]').textContent = fmt(s.relayBacklog);
    $('[data-testid="pending-on-gxp"]').textContent = fmt(s.pendingOnGxp);
    $('[data-testid="stats-at"]').textContent = clock(s.at);
    const t = (Date.parse(s.at) || serverNow()) / 1000;
    const push = (k, v) => series[k].push(typeof v === 'number' ? v : null);
    series.t.push(t);
    push('buys', s.buysPerSec);
    push('add', s.addGxpPerSec);
    push('p50', s.finalizeP50Ms);
    push('p99', s.finalizeP99Ms);
    push('lag', s.replicationLagMs);
    let drop = 0;
    while (drop < series.t.length && series.t[drop] < t - CHART_WINDOW_S) drop++;
    if (drop) for (const k of Object.keys(series)) series[k].splice(0, drop);
    for (const c of charts) c.u.setData(c.data());
  }

  /* The three charts, made once (uPlot is vendored; without it the charts say so). */
  function ensureCharts() {
    if (charts.length) return;
    if (typeof window.uPlot !== 'function') {
      for (const id of ['#chart-throughput', '#chart-latency', '#chart-lag'])
        $(id).textContent = 'charts unavailable (uPlot did not load)';
      return;
    }
    makeChart('#chart-throughput', 'throughput (/s)',
      [['buys/s', 'buys', '#1f5fa8'], ['add-gxp/s', 'add', '#2e8b57']]);
    makeChart('#chart-latency', 'finalization (ms)',
      [['p50', 'p50', '#1f5fa8'], ['p99', 'p99', '#b8461b']]);
    makeChart('#chart-lag', 'replication lag (ms)', [['lag', 'lag', '#7a3fa0']]);
    window.addEventListener('resize', sizeCharts);
  }

  /* One small uPlot time chart of some series (label, key, colour), in UTC. */
  function makeChart(sel, title, defs) {
    const box = $(sel);
    const opts = {
      title,
      width: Math.max(box.clientWidth, 200),
      height: 110,
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: {
        /* Always the last five minutes, ending at the newest figure (or now). */
        x: { time: true, range: () => {
          const end = series.t.length ? series.t[series.t.length - 1] : serverNow() / 1000;
          return [end - CHART_WINDOW_S, end];
        } },
        y: { range: (u, min, max) => [0, Math.max(1, max || 0)] },
      },
      series: [{}, ...defs.map(([label, , stroke]) => ({ label, stroke, width: 1.5 }))],
      axes: [{ space: 40, size: 28, incrs: [15, 30, 60, 120, 300],
        values: (u, splits) => splits.map((v) => utcTime(v, 16)) },
        { size: 44 }],
      legend: { live: false },
    };
    const data = () => [series.t, ...defs.map(([, key]) => series[key])];
    charts.push({ box, data, u: new window.uPlot(opts, data(), box) });
  }

  /* A chart's time (seconds) in UTC: HH:MM (end 16), HH:MM:SS (end 19). */
  function utcTime(sec, end) {
    return new Date(sec * 1000).toISOString().slice(11, end);
  }

  function sizeCharts() {
    for (const c of charts) c.u.setSize({ width: Math.max(c.box.clientWidth, 200), height: 110 });
  }

  /* ---- the watch panel ------------------------------------------------------------------ */

  function onWatchSubmit(ev) {
    ev.preventDefault();
    const f = ev.currentTarget.elements;
    const id = (v) => (/^[1-9][0-9]{0,15}$/.test(v.trim()) ? Number(v.trim()) : null);
    watch.userId = id(f.userId.value);
    watch.itemId = id(f.itemId.value);
    sessionStorage.setItem(KEY_WATCH, JSON.stringify({ userId: watch.userId, itemId: watch.itemId }));
    refreshWatch('user');
    refreshWatch('item');
  }

  /* Runs a refresh of one side (user or item); one at a time, and once more if asked meanwhile,
   * so a burst of finalized frames costs a read every WATCH_GAP_MS at most. Never on a timer. */
  async function refreshWatch(side) {
    const run = watch.runs[side] || (watch.runs[side] = { busy: false, again: false });
    if (run.busy) { run.again = true; return; }
    run.busy = true;
    try {
      for (;;) {
        run.again = false;
        const started = Date.now();
        await (side === 'user' ? readWatchedUser() : readWatchedItem());
        if (!run.again) break;
        await sleep(WATCH_GAP_MS - (Date.now() - started)); /* spares the token's rate limit */
      }
    } finally {
      run.busy = false;
    }
  }

  /* Shows a figure (or an error) in a watch cell; attrs become data-* attributes. */
  function showFigure(testid, text, attrs, error) {
    const dd = $(`[data-testid="${testid}"]`);
    dd.textContent = text;
    dd.classList.toggle('error', !!error);
    for (const k of ['userId', 'balance', 'reserved', 'itemId', 'stock', 'cost']) delete dd.dataset[k];
    Object.assign(dd.dataset, attrs || {});
  }

  async function readWatchedUser() {
    const id = watch.userId;
    if (id === null) return showFigure('watch-balance', '–');
    try {
      const g = await api(`/user/gxp?userId=${id}`);
      if (id !== watch.userId) return;
      showFigure('watch-balance', `user ${id}: ${g.balance} GXP, reserved ${g.reserved}`,
        { userId: String(id), balance: String(g.balance), reserved: String(g.reserved) });
    } catch (e) {
      if (id === watch.userId) showFigure('watch-balance', `user ${id}: ${errorText(e)}`, { userId: String(id) }, true);
    }
  }

  async function readWatchedItem() {
    const id = watch.itemId;
    if (id === null) return showFigure('watch-stock', '–');
    try {
      const [item, offer] = await Promise.all([api(`/item/${id}`), findMarketplaceItem(id)]);
      if (id !== watch.itemId) return;
      const stock = offer ? offer.count : 0;
      showFigure('watch-stock',
        `item ${id} (${item.name}): ${offer ? `${stock} in stock` : 'not on sale'}, cost ${item.cost}`,
        { itemId: String(id), stock: String(stock), cost: String(item.cost) });
    } catch (e) {
      if (id === watch.itemId) showFigure('watch-stock', `item ${id}: ${errorText(e)}`, { itemId: String(id) }, true);
    }
  }

  /* The marketplace row of an item (GET /marketplace/item pages by its own id, not the
   * item's): read page by page until it shows up or a page is empty. */
  async function findMarketplaceItem(itemId) {
    let after = 0;
    for (let n = 0; n < MARKETPLACE_PAGES_MAX; n++) {
      const page = await api(`/marketplace/item?limit=${MARKETPLACE_PAGE}&after=${after}`);
      const rows = page && Array.isArray(page.marketplaceItems) ? page.marketplaceItems : [];
      const hit = rows.find((r) => r.itemId === itemId);
      if (hit) return hit;
      if (rows.length === 0) return null;
      after = rows[rows.length - 1].id;
    }
    return null;
  }

  /* ---- the transaction page ------------------------------------------------------------- */

  /* Opens #/tx/<cid>: reads the transaction and its events, and follows its live frames. */
  function showTxPage(cid) {
    $('#live-view').hidden = true;
    const view = $('#tx-view');
    view.hidden = false;
    const page = { cid, tx: undefined, txError: null, events: undefined, eventsError: null, live: [] };
    const rec = txs.get(cid);
    if (rec) { /* frames that came before the page opened */
      for (const [stage, st] of Object.entries(rec.stages))
        page.live.push({ correlationId: cid, stage, at: st.iso, detail: st.detail });
      page.live.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    }
    txPage = page;
    renderTxPage();
    if (!UUID_RE.test(cid)) {
      page.txError = page.eventsError = 'not a correlation id (a UUID)';
      return renderTxPage();
    }
    const q = `correlationId=${encodeURIComponent(cid)}`;
    const settle = (key, errKey) => [
      (v) => { page[key] = v; if (txPage === page) renderTxPage(); },
      (e) => { page[errKey] = errorText(e); if (txPage === page) renderTxPage(); },
    ];
    api(`/gxp/transaction?${q}`).then(...settle('tx', 'txError'));
    api(`/eventlog/events?${q}`).then(...settle('events', 'eventsError'));
  }

  /* The stage rows of a page: what the trace read says (like `gf trace`), completed by live
   * frames for what it does not know yet. Each row: stage, ISO time or null, text. */
  function traceRows(page) {
    const t = page.tx;
    const rows = [];
    const live = {};
    for (const f of page.live) live[f.stage] = f;
    const fromLive = (stage, fallback) => {
      const f = live[stage];
      if (f) rows.push({ stage, at: f.at, text: `${stage}${describeDetail(stage, f.detail)} (live)` });
      else rows.push({ stage, at: null, text: fallback });
    };
    if (t) {
      rows.push({ stage: 'claimed', at: t.createdAt, text: t.kind === 'buy'
        ? `buy: user ${t.userId}, item ${t.itemId}, cost ${t.amount}`
        : `${t.kind}: user ${t.userId}, amount ${t.amount}` });
    } else fromLive('claimed', page.txError ? 'unknown' : 'reading…');
    if (live.refused) fromLive('refused', '');
    const g = t && t.gxp;
    if (g) rows.push({ stage: 'prepared', at: g.createdAt, text: `gxp: ${g.type} ${g.amount} prepared` });
    else if (t && !live.prepared) rows.push({ stage: 'prepared', at: null, text: 'no gxp transaction' });
    else fromLive('prepared', 'not yet');
    if (t && t.decision) rows.push({ stage: 'decided', at: t.decision.createdAt, text: `decision: ${t.decision.state}` });
    else fromLive('decided', 'not decided yet');
    const fin = g && (g.finalizedAt || (g.status !== 'PENDING' ? g.updatedAt : null));
    if (fin) {
      const src = live.finalized && live.finalized.detail && live.finalized.detail.source;
      rows.push({ stage: 'finalized', at: fin, text: `gxp: ${g.status}${src ? ` via ${src}` : ''}` });
    } else fromLive('finalized', g ? `gxp: ${g.status}` : 'not finalized');
    const evs = page.events && Array.isArray(page.events.events) ? page.events.events.slice() : null;
    if (evs && evs.length) {
      evs.sort((a, b) => Date.parse(a.storedAt) - Date.parse(b.storedAt));
      for (const e of evs)
        rows.push({ stage: 'stored', at: e.storedAt, text: `event ${e.event} stored (occurred ${e.occurredAt})` });
    } else if (page.eventsError) fromLive('stored', `event: unknown (${page.eventsError})`);
    else fromLive('stored', evs ? 'no event' : 'reading…');
    return rows;
  }

  /* Draws the open transaction page from its current knowledge. */
  function renderTxPage() {
    const page = txPage;
    if (!page) return;
    const rows = traceRows(page);
    const body = el('tbody');
    let prev = null;
    for (const r of rows) {
      const at = r.at ? Date.parse(r.at) : NaN;
      const delta = Number.isFinite(at) && prev !== null ? `+${Math.round(at - prev)} ms` : '';
      if (Number.isFinite(at)) prev = at;
      body.append(el('tr', { 'data-stage': r.stage, 'data-reached': r.at ? 'true' : null },
        el('td', { class: 'mono' }, r.at || '–'), el('td', {}, r.stage),
        el('td', { class: 'num' }, delta), el('td', {}, r.text)));
    }
    const t = page.tx;
    const rec = txs.get(page.cid);
    const info = t || rec || {};
    $('#tx-view').replaceChildren(...[
      el('p', {}, el('a', { href: '#/' }, '← live transactions')),
      el('h2', {}, 'Transaction ', el('span', { class: 'mono' }, page.cid)),
      el('p', { class: 'muted' }, `kind ${fmt(info.kind)} · user ${fmt(info.userId)} · item ${fmt(info.itemId)} · amount ${fmt(info.amount)}`),
      page.txError ? el('p', { class: 'error', 'data-testid': 'tx-error' }, `transaction: ${page.txError}`) : null,
      el('table', { class: 'trace', 'data-testid': 'tx-stages' },
        el('thead', {}, el('tr', {}, el('th', {}, 'time (UTC)'), el('th', {}, 'stage'),
          el('th', {}, 'since previous'), el('th', {}, 'what'))), body),
      el('h3', {}, 'Live frames'),
      page.live.length
        ? el('ol', { class: 'live-frames', 'data-testid': 'tx-live' }, ...page.live.map((f) =>
          el('li', { 'data-stage': f.stage }, el('span', { class: 'mono' }, clock(f.at)), ` ${f.stage}`,
            describeDetail(f.stage, f.detail))))
        : el('p', { class: 'muted', 'data-testid': 'tx-live' }, 'none yet'),
    ].filter(Boolean));
  }

  /* ---- the router ----------------------------------------------------------------------- */

  /* #/ is the live table, #/tx/<cid> a transaction's page. */
  function route() {
    const m = /^#\/tx\/([^/?#]+)$/.exec(location.hash);
    if (m) {
      let cid;
      try { cid = decodeURIComponent(m[1]); } catch { cid = m[1]; }
      return showTxPage(cid.toLowerCase());
    }
    txPage = null;
    $('#tx-view').hidden = true;
    $('#tx-view').replaceChildren();
    $('#live-view').hidden = false;
  }

  /* ---- start ---------------------------------------------------------------------------- */

  function init() {
    $('[data-testid="login-form"]').addEventListener('submit', onLoginSubmit);
    $('[data-testid="sign-out"]').addEventListener('click', () => signOut(''));
    $('#watch-form').addEventListener('submit', onWatchSubmit);
    window.addEventListener('hashchange', () => { if (session.token) route(); });
    try {
      const w = JSON.parse(sessionStorage.getItem(KEY_WATCH) || 'null');
      if (w) {
        watch.userId = Number.isSafeInteger(w.userId) ? w.userId : null;
        watch.itemId = Number.isSafeInteger(w.itemId) ? w.itemId : null;
        const f = $('#watch-form').elements;
        f.userId.value = watch.userId ?? '';
        f.itemId.value = watch.itemId ?? '';
      }
    } catch { /* a damaged entry: no watch */ }
    setInterval(tick, TICK_MS);
    if (session.token) startApp(); else showLogin('');
  }

  init();
})();
