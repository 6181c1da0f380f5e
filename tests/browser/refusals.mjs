// What the console refuses: a viewer's replay (403, in the audit log), and an action without
// the session's CSRF token (403), while a viewer's dry run is answered.
import { env, check, run, login } from './lib.mjs';

const base = env('ASW_CONSOLE_URL');
const bad = env('ASW_BAD_ID');
const target = `outbound/${bad}`;

await run('refusals', async (page, shot) => {
  await login(page, base, env('ASW_VIEWER_USER'), env('ASW_VIEWER_PASSWORD'));
  await page.click('nav >> text=Parked');
  await page.check(`input[name=message][value="${target}"]`);
  await shot('parked');
  // A dry run changes nothing: a viewer may ask.
  await page.click('button:has-text("Replay: dry run")');
  check((await page.textContent('#plan')).includes(target), 'the dry run names the message');
  await shot('dry-run');

  // A viewer's replay: refused.
  await page.click('nav >> text=Parked');
  await page.check(`input[name=message][value="${target}"]`);
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click('button:has-text("Replay"):not(:has-text("dry run"))'),
  ]);
  check(answer.status() === 403, `a viewer's replay gets ${answer.status()}`);
  check((await page.textContent('main')).includes('only an operator'), 'the page says why');
  await shot('viewer-refused');

  // Without the CSRF token: the API and the form refuse, whoever asks.
  const statuses = await page.evaluate(async (m) => {
    const post = (headers) => fetch('/api/replay', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ messages: [m], dry_run: true }),
    }).then((r) => r.status);
    const { csrf } = await (await fetch('/api/session')).json();
    return { without: await post({}), with: await post({ 'X-CSRF-Token': csrf }) };
  }, target);
  check(statuses.without === 403, `without the token: ${statuses.without}`);
  check(statuses.with === 200, `with it: ${statuses.with}`);
  await page.click('nav >> text=Parked');
  await page.check(`input[name=message][value="${target}"]`);
  await page.evaluate(() => document.querySelector('input[name=csrf]').remove());
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click('button:has-text("Replay: dry run")'),
  ]);
  check(refused.status() === 403, `the form without its token gets ${refused.status()}`);
  check((await page.textContent('main')).includes('CSRF'), 'the page says why');
  await shot('csrf-refused');

  // The audit log has the viewer's refusal.
  await page.click('nav >> text=Audit log');
  const first = await page.textContent('#audit tbody tr');
  check(first.includes('vic') && first.includes('refused') && first.includes(bad), `the audit log: ${first}`);
  await shot('audit');
});
