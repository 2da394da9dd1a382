/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
// The browser tests' page.evaluate and waitForFunction callbacks run in the page: they need the DOM's types.
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (scripts/chromium.sh installs it), or CLIPSTREAM_CHROMIUM. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = process.env.CLIPSTREAM_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(
      `no Chromium at ${executablePath}: run scripts/chromium.sh (npm test does), or set CLIPSTREAM_CHROMIUM`,
    );
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

const run = promisify(execFile);
export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

/** Runs the built CLI; its stdout. */
export async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/**
 * Where the screenshots are written: the README's (docs/img) with CLIPSTREAM_SCREENSHOTS=1, else a temporary folder,
 * so a test run does not change the checkout.
 */
export const SCREENSHOTS =
  process.env.CLIPSTREAM_SCREENSHOTS === '1'
    ? join(import.meta.dirname, '../../docs/img')
    : join(tmpdir(), 'clipstream-screenshots');

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** Presses Tab (Shift+Tab backwards) until the focused element matches `selector`, at most `max` times. */
export async function tabTo(page: Page, selector: string, { backwards = false, max = 120 } = {}): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await page.keyboard.press(backwards ? 'Shift+Tab' : 'Tab');
  }
  throw new Error(`Tab never reached ${selector}`);
}
