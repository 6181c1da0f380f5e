// An operator's day in the console: log in, find the documents the testbed sent in the overview
// and the search, open one, read its document and its conversation.
import { env, check, run, login } from './lib.mjs';

const base = env('ASW_CONSOLE_URL');
const good = env('ASW_GOOD_ID');
const bad = env('ASW_BAD_ID');

await run('console', async (page, shot) => {
  await page.goto(`${base}/login`);
  await shot('login');
  await login(page, base, env('ASW_OPERATOR_USER'), env('ASW_OPERATOR_PASSWORD'));
  check((await page.textContent('h1')).includes('Overview of VN'), 'the overview after the login');
  const row = page.locator('#counts tbody tr', { has: page.locator('td', { hasText: /^TH$/ }) })
    .filter({ has: page.locator('td', { hasText: /^formd$/ }) });
  check((await row.count()) === 1, 'one TH e-Form D row in the overview');
  const sentLastHour = Number(await row.locator('td').nth(2).textContent());
  check(sentLastHour >= 1, `TH e-Form D sent in the last hour: ${sentLastHour}`);
  const parkedLastHour = Number(await row.locator('td').nth(4).textContent());
  check(parkedLastHour >= 1, `TH e-Form D parked in the last hour: ${parkedLastHour}`);
  const broker = await page.textContent('#broker');
  check(broker.includes('connected') && !broker.includes('not connected'), `the broker session is up: ${broker}`);
  await shot('overview');

  // The search: a GET form, so the URL holds the query.
  await page.click('nav >> text=Messages');
  await page.selectOption('select[name=partner]', 'TH');
  await page.selectOption('select[name=kind]', 'formd');
  await page.selectOption('select[name=direction]', 'outbound');
  await Promise.all([page.waitForURL(/partner=TH/), page.click('button:has-text("Search")')]);
  const url = new URL(page.url());
  check(url.searchParams.get('kind') === 'formd', `the query in the URL: ${url}`);
  const table = await page.textContent('#messages');
  check(table.includes(good) && table.includes(bad), 'both documents found');
  await shot('search');
  // The same URL, opened again, gives the same answer (linkable).
  await page.goto(url.toString());
  check((await page.textContent('#messages')).includes(good), 'the link gives the same search');

  // The refused one (parked): its reason, the line it names marked in the document.
  await page.click(`a:has-text("${bad}")`);
  const state = await page.textContent('#state');
  check(/failed|rejected/.test(state), `the bad one is parked: ${state}`);
  const reason = await page.textContent('#reason');
  check(reason.includes('FORMD-001'), `the rule id in the reason: ${reason}`);
  check((await page.locator('#document tr.marked').count()) >= 1, 'the offending line is marked');
  const marked = await page.textContent('#document tr.marked');
  check(marked.includes('MY'), `the marked line is the bad one: ${marked}`);
  // The download is the exact journaled document.
  const href = await page.getAttribute('a:has-text("Download the exact bytes")', 'href');
  const bytes = await page.evaluate(async (h) => (await fetch(h)).text(), href);
  check(bytes.includes('<fd:IssuedIn>MY</fd:IssuedIn>'), 'the download holds the document');
  await shot('message');

  // The good one and its conversation: the e-Form D, then TH's receipt.
  await page.goto(`${base}/messages/outbound/${good}`);
  check((await page.textContent('#state')).includes('acknowledged'), 'the good one is acknowledged');
  const signer = await page.textContent('#signer');
  check(signer.startsWith('VN'), `signed by the hub, VN: ${signer}`);
  const fingerprint = await page.textContent('#fingerprint');
  check(/^[0-9a-f]{64}$/.test(fingerprint), `the signing certificate's SHA-256: ${fingerprint}`);
  await page.click('a:has-text("Its conversation")');
  const rows = await page.locator('#conversation tbody tr').allTextContents();
  check(rows.length >= 2, `the conversation has the answer: ${rows.length} rows`);
  check(rows[0].includes('formd') && rows[0].includes(good), 'the original first');
  check(rows.some((r) => r.includes('formd-ack')), 'the receipt in the conversation');
  check((await page.locator('#conversation tr.current').count()) === 1, 'the message asked for highlighted');
  await shot('conversation');

  // Partners: TH with its channel and its certificate in the trust store.
  await page.click('nav >> text=Partners and certificates');
  const partners = await page.textContent('#partners');
  check(partners.includes('TH') && partners.includes('up'), `TH's channel is up: ${partners}`);
  check((await page.locator('#certificates tbody tr').count()) >= 1, 'the trust store is listed');
  await shot('partners');
});
