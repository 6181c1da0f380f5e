// What the console refuses: a viewer's replay (403, in the audit log), and an action without
// the session's CSRF token (403), while a viewer's dry run is answered.
import {
  env, check, run, login, pickParked, answerOf, DRY_RUN, dryRunThenReplay, checkNewestAudit,
} from './lib.mjs';

const base = env('ASW_CONSOLE_URL');
const bad = env('ASW_BAD_ID');
const target = `outbound/${bad}`;

await run('refusals', async (page, shot) => {
  await login(page, base, env('ASW_VIEWER_USER'), env('ASW_VIEWER_PASSWORD'));
  // A dry run changes nothing: a viewer may ask. A viewer's replay: refused.
  const answer = await dryRunThenReplay(page, shot, target);
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
  await pickParked(page, target);
  await page.evaluate(() => document.querySelector('input[name=csrf]').remove());
  const refused = await answerOf(page, DRY_RUN);
  check(refused.status() === 403, `the form without its token gets ${refused.status()}`);
  check((await page.textContent('main')).includes('CSRF'), 'the page says why');
  await shot('csrf-refused');

  // The audit log has the viewer's refusal.
  await checkNewestAudit(page, shot, ['vic', 'refused', bad]);
});
