// Shared by the console's browser scripts: the environment the e2e test gives, Chromium
// (Debian's, headless), logging in, the Parked page's dry run and replay, the audit log's newest
// row, named checks, and a screenshot of each step.
import { chromium } from 'playwright-core';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** The value of environment variable `name`; exits 2 when it is not set. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (the e2e test sets it)`);
    process.exit(2);
  }
  return value;
}

/** Fails the script with `message` unless `condition`. */
export function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

/** Runs `steps(page, shot)` in a fresh headless Chromium; exit 0 when every check passed. */
export async function run(name, steps) {
  const shots = env('ASW_SCREENSHOTS');
  mkdirSync(shots, { recursive: true });
  rmSync(join(shots, `${name}-failure.png`), { force: true });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    // Tests run as root on CI, where Chromium's sandbox cannot start.
    args: ['--no-sandbox'],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const shot = async (step) => {
    const file = join(shots, `${name}-${step}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`screenshot ${file}`);
  };
  let code = 0;
  try {
    await steps(page, shot);
    console.log(`${name}: every check passed`);
  } catch (e) {
    console.error(`${name}: ${e.stack || e}`);
    await shot('failure').catch(() => {});
    code = 1;
  } finally {
    await browser.close();
  }
  process.exit(code);
}

/** Logs in as `user` from the login page the console sends to. */
export async function login(page, base, user, password) {
  await page.goto(`${base}/`);
  check(new URL(page.url()).pathname === '/login', `no session sends to /login, not ${page.url()}`);
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
}

/** Opens the Parked page and ticks message `target` (`direction/id`). */
export async function pickParked(page, target) {
  await page.click('nav >> text=Parked');
  await page.check(`input[name=message][value="${target}"]`);
}

/** Clicks `selector`; the answer to the POST that click sends. */
export async function answerOf(page, selector) {
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click(selector),
  ]);
  return answer;
}

/** The dry-run button on the Parked page (the replay button is the other "Replay" one). */
export const DRY_RUN = 'button:has-text("Replay: dry run")';

/**
 * Asks the Parked page for a dry run of `target`, which must name it (screenshots `parked` and
 * `dry-run`), then for its replay; returns the replay's answer, whatever its status.
 */
export async function dryRunThenReplay(page, shot, target) {
  await pickParked(page, target);
  await shot('parked');
  await page.click(DRY_RUN);
  check((await page.textContent('#plan')).includes(target), 'the dry run names the message');
  await shot('dry-run');

  await pickParked(page, target);
  return answerOf(page, 'button:has-text("Replay"):not(:has-text("dry run"))');
}

/** Opens the audit log; its newest row must hold every one of `words` (screenshot `audit`). */
export async function checkNewestAudit(page, shot, words) {
  await page.click('nav >> text=Audit log');
  const first = await page.textContent('#audit tbody tr');
  check(words.every((w) => first.includes(w)), `the audit log: ${first}`);
  await shot('audit');
}
