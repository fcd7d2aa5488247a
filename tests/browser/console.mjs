// The operators' console in a real browser (issue 17): Debian's headless Chromium driven by
// puppeteer-core, against the whole local stack behind nginx (started by
// tests/e2e/console_test.sh, which passes what it knows in the environment):
//   1. the page loads (login form), an operator signs in, the stream goes live — and nothing
//      is ever logged as an error in the page's console;
//   2. a buy made through the API appears with its correlation id and reaches "finalized"
//      within 2 s of its answer, without a reload;
//   3. every gxp killed (SIGKILL) mid-buy, after its prepare: the buy commits and shows
//      "stuck"; once gxp is back it shows "resolved";
//   4. the transaction's page shows every stage of the first buy.
// A screenshot of each state goes to SHOTS_DIR (kept: the harness keeps the directory of a
// failing run). Prints one "console: ok N - ..." line per check; exits non-zero on failure.
//
// Environment: GF_URL (the ingress, e.g. http://127.0.0.1:30080), GF_ADMIN_NAME,
// GF_ADMIN_PASSWORD, SHOTS_DIR, CHROMIUM (default /usr/bin/chromium), GXP_KILL and GXP_START
// (shell commands that stop every gxp process and start them again), GXP_PSQL (psql on gxp-db,
// a command to which -c SQL is added), BUY_GATE (the file backend-svc-1's buys wait for after
// their prepare).
import { execSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`console test: ${k} is not set`);
  return v;
};
const BASE = env('GF_URL');
const ADMIN = env('GF_ADMIN_NAME');
const PASSWORD = env('GF_ADMIN_PASSWORD');
const SHOTS = env('SHOTS_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const GXP_KILL = env('GXP_KILL');
const GXP_START = env('GXP_START');
const GXP_PSQL = env('GXP_PSQL');
const BUY_GATE = env('BUY_GATE');
/* The status of cid's transaction on gxp-db ('0' PENDING, '1' ABORTED, '2' COMMITTED), '' none. */
const gxpStatus = (cid) => execSync(
  `${GXP_PSQL} -c "SELECT status FROM gxp_transaction WHERE correlation_id = '${cid}'"`,
  { encoding: 'utf8' }).trim();
mkdirSync(SHOTS, { recursive: true });

let checks = 0;
const ok = (what) => console.log(`console: ok ${++checks} - ${what}`);

/* ---- the API, as a client of its own (fetch through the same ingress) ---------------------- */
let token = null;
/* A 503 overloaded did nothing and says when to come back (Retry-After): the client sends the
 * request again then, as gf does. Admission control sheds while gxp's replication is behind,
 * which a machine busy with other work can cause for a moment. */
async function api(method, path, body, headers = {}) {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(BASE + path, {
      method,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'Content-Type': 'application/json' } : {}),
        ...headers,
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    const after = Number(res.headers.get('retry-after'));
    if (res.status === 503 && json?.error === 'overloaded' && after > 0 && attempt < 10) {
      console.log(`console: ${method} ${path} answered 503 overloaded; sending again in ${after} s`);
      await new Promise((r) => setTimeout(r, after * 1000));
      continue;
    }
    return { status: res.status, json, text };
  }
}
async function must(method, path, body, headers) {
  const r = await api(method, path, body, headers);
  if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/* ---- the browser -------------------------------------------------------------------------- */
const problems = [];
const answers = []; /* the page's requests answered >= 400, shown when a check fails */
/* While every gxp is down, and 5 s after it is back: the API may answer 503. */
const outage = { from: 0, to: Infinity, answers: 0 };
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1440,960'],
  defaultViewport: { width: 1440, height: 960 },
});
let page;
let shot = 0;
async function screenshot(name) {
  const file = `${SHOTS}/${String(++shot).padStart(2, '0')}-${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

async function waitFor(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const rowState = (cid) => page.evaluate((c) => {
  const row = document.querySelector(`tr[data-cid="${c}"]`);
  if (!row) return null;
  const reached = [...row.querySelectorAll('td[data-stage][data-reached="true"]')].map((td) => td.dataset.stage);
  return { state: row.dataset.state, reached, label: row.querySelector('td.state')?.textContent ?? '' };
}, cid);

try {
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    /* The API's 503 while every gxp is down or coming back (the watch panel reading a
     * balance) is its right answer, which Chromium logs as an error all the same. */
    if (/status of 503/.test(m.text()) && outage.from && Date.now() <= outage.to) {
      outage.answers++;
      return;
    }
    problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) answers.push(`${r.status()} ${r.request().method()} ${r.url()} at ${new Date().toISOString()}`);
  });
  page.on('requestfailed', (r) => {
    const f = r.failure()?.errorText ?? '';
    if (!/ERR_ABORTED/.test(f)) problems.push(`request failed: ${r.url()} ${f}`);
  });

  // 1. Load, sign in, live.
  await page.goto(`${BASE}/console/`, { waitUntil: 'load' });
  await page.waitForSelector('[data-testid="login-form"]', { visible: true, timeout: 10000 });
  await screenshot('login');
  await page.type('[data-testid="login-form"] [name="name"]', ADMIN);
  await page.type('[data-testid="login-form"] [name="password"]', PASSWORD);
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]', { timeout: 10000 });
  ok('the console loads, the operator signs in, the stream is live');
  await screenshot('live');

  // The API's own login, and a shop: a user with GXP, an item with stock.
  token = (await must('POST', '/auth/login', { name: ADMIN, password: PASSWORD })).token;
  const tag = Date.now().toString(36);
  const userId = (await must('POST', '/user/create', { name: `console-${tag}` })).userId;
  await must('POST', '/user/gxp/add', { userId, amount: 1000 });
  const itemId = (await must('POST', '/item/create', { name: `console-item-${tag}`, cost: 7 })).itemId;
  await must('POST', '/marketplace/item/create', { itemId, count: 50 });
  // Watch them: the panel shows the balance and the stock, and follows the buy.
  await page.evaluate(() => { location.hash = '#/'; });
  const watch = await page.$('[data-testid="watch"]');
  if (watch) {
    const inputs = await watch.$$('input');
    if (inputs.length >= 2) {
      await inputs[0].click({ clickCount: 3 });
      await inputs[0].type(String(userId));
      await inputs[1].click({ clickCount: 3 });
      await inputs[1].type(String(itemId));
      await inputs[1].press('Enter');
    }
  }

  // 2. A buy: its row appears and reaches "finalized" within 2 s of the answer.
  const bought = await must('POST', '/marketplace/item/buy', { userId, itemId });
  const t0 = Date.now();
  const cid = bought.correlationId;
  await waitFor(`the row of ${cid}`, async () => (await rowState(cid)) !== null, 2000);
  await waitFor(`${cid} finalized`, async () => (await rowState(cid))?.reached.includes('finalized'), 2000 - (Date.now() - t0));
  const finalizedMs = Date.now() - t0;
  ok(`a buy appears with its correlation id and reaches finalized ${finalizedMs} ms after its answer, without a reload`);
  await screenshot('buy-finalized');
  await waitFor(`${cid} stored`, async () => (await rowState(cid))?.reached.includes('stored'), 10000);
  await waitFor('the watched balance', () => page.evaluate((u) => {
    const b = document.querySelector('[data-testid="watch-balance"]');
    return b && b.dataset.userId === String(u) && b.dataset.balance === '993';
  }, userId), 5000);
  ok('the watched balance follows the buy (1000 - 7)');

  // 3. Every gxp killed mid-buy. The buy is held after its prepare (backend-svc-1's failpoint
  //    waits while BUY_GATE is missing); once gxp-db holds its reservation PENDING, every gxp
  //    dies (SIGKILL) and the buy is let go. It commits (its GXP was reserved by the prepare),
  //    and nobody can say it was finalized: stuck. Once gxp is back, resolved.
  const stuckCid = randomUUID();
  unlinkSync(BUY_GATE);
  const held = api('POST', '/marketplace/item/buy', { userId, itemId }, { 'X-Correlation-Id': stuckCid });
  try {
    await waitFor(`${stuckCid} PENDING on gxp-db`, () => gxpStatus(stuckCid) === '0', 10000);
    outage.from = Date.now();
    execSync(GXP_KILL, { stdio: 'inherit' });
  } finally {
    writeFileSync(BUY_GATE, '');
  }
  const answer = await held;
  if (answer.status !== 200) throw new Error(`the buy whose gxp died after its prepare answered ${answer.status}: ${answer.text}`);
  ok('a buy prepared on gxp, every gxp killed, the buy let go: it commits (200)');
  await waitFor(`${stuckCid} stuck`, async () => (await rowState(stuckCid))?.state === 'stuck', 10000);
  const st = await rowState(stuckCid);
  ok(`with gxp dead the buy shows stuck (${st.reached.join(', ')}; not finalized)`);
  if (st.reached.includes('finalized')) throw new Error(`${stuckCid} stuck but finalized: ${JSON.stringify(st)}`);
  await screenshot('stuck');
  execSync(GXP_START, { stdio: 'inherit' });
  outage.to = Date.now() + 5000;
  await waitFor(`${stuckCid} resolved`, async () => {
    const s = await rowState(stuckCid);
    return s && s.state === 'resolved' && s.reached.includes('finalized');
  }, 60000);
  ok(`once gxp is back it shows resolved (${(await rowState(stuckCid)).label}; ${outage.answers} reads answered 503 meanwhile)`);
  await screenshot('resolved');

  // 4. The transaction's page: every stage of the first buy.
  await page.click(`tr[data-cid="${cid}"] a`);
  await page.waitForSelector('[data-testid="tx-page"]', { visible: true, timeout: 5000 });
  const stages = await waitFor('every stage on the transaction page', () => page.evaluate(() => {
    const rows = [...document.querySelectorAll('[data-testid="tx-page"] tr[data-stage][data-reached="true"]')];
    const s = new Set(rows.map((r) => r.dataset.stage));
    return ['claimed', 'prepared', 'decided', 'finalized', 'stored'].every((x) => s.has(x)) ? [...s] : null;
  }), 10000);
  ok(`the transaction page shows every stage (${stages.join(', ')})`);
  await screenshot('transaction');

  if (problems.length) {
    throw new Error(`the page logged problems:\n  ${problems.join('\n  ')}` +
      (answers.length ? `\nits requests answered >= 400:\n  ${answers.join('\n  ')}` : ''));
  }
  ok('no errors in the page\'s console');
  console.log(`console: ${checks} checks passed; screenshots in ${SHOTS}`);
} catch (e) {
  if (page) await screenshot('failure').catch(() => {});
  console.error(`console: FAILED: ${e.message}`);
  if (problems.length) console.error(`  page problems:\n  ${problems.join('\n  ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
