// An operator replays a parked document from the Parked page: the dry run first, then the
// replay, which says it was replayed (the e2e test checks it reached the back-office once).
import { env, check, run, login, dryRunThenReplay, checkNewestAudit } from './lib.mjs';

const base = env('ASW_CONSOLE_URL');
const parked = env('ASW_PARKED_ID');
const target = `inbound/${parked}`;

await run('replay', async (page, shot) => {
  await login(page, base, env('ASW_OPERATOR_USER'), env('ASW_OPERATOR_PASSWORD'));
  const answer = await dryRunThenReplay(page, shot, target);
  check(answer.status() === 200, `the operator's replay gets ${answer.status()}`);
  const row = await page.textContent('#done tbody tr');
  check(row.includes(parked) && row.includes('replayed'), `the replay's outcome: ${row}`);
  await shot('replayed');

  // The audit log has the operator's replay.
  await checkNewestAudit(page, shot, ['olga', 'replay', parked]);
});
