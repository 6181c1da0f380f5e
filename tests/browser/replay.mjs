// An operator replays a parked document from the Parked page: the dry run first, then the
// replay, which says it was replayed (the e2e test checks it reached the back-office once).
import { env, check, run, login } from './lib.mjs';

const base = env('ASW_CONSOLE_URL');
const parked = env('ASW_PARKED_ID');
const target = `inbound/${parked}`;

await run('replay', async (page, shot) => {
  await login(page, base, env('ASW_OPERATOR_USER'), env('ASW_OPERATOR_PASSWORD'));
  await page.click('nav >> text=Parked');
  await page.check(`input[name=message][value="${target}"]`);
  await shot('parked');
  await page.click('button:has-text("Replay: dry run")');
  check((await page.textContent('#plan')).includes(target), 'the dry run names the message');
  await shot('dry-run');

  await page.click('nav >> text=Parked');
  await page.check(`input[name=message][value="${target}"]`);
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click('button:has-text("Replay"):not(:has-text("dry run"))'),
  ]);
  check(answer.status() === 200, `the operator's replay gets ${answer.status()}`);
  const row = await page.textContent('#done tbody tr');
  check(row.includes(parked) && row.includes('replayed'), `the replay's outcome: ${row}`);
  await shot('replayed');

  // The audit log has the operator's replay.
  await page.click('nav >> text=Audit log');
  const first = await page.textContent('#audit tbody tr');
  check(first.includes('olga') && first.includes('replay') && first.includes(parked), `the audit log: ${first}`);
  await shot('audit');
});
