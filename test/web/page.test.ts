import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClipModel, type ClipModel } from '../../src/clip/index.js';
import { createFetcher, type Fetcher } from '../../src/fetch/index.js';
import { openIndex, type Index } from '../../src/index/index.js';
import { readTarSamples } from '../../src/io/tar-read.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { solidImage } from '../clip/helpers.js';
import { tempDir } from '../helpers/tmp.js';
import { cli, launchBrowser, screenshot, tabTo } from './browser.js';
import { buildWebWorld, type WebWorld } from './world.js';

/**
 * The page of `clipstream serve`, end to end in a real browser (Debian's chromium through playwright-core) against
 * the test image server: one browser and one world for the whole file.
 */
let world: WebWorld;
let model: ClipModel;
let index: Index;
let fetcher: Fetcher;
let browser: Browser;
let base = '';
const closers: (() => Promise<unknown>)[] = [];

async function serve(o: Partial<ServerOptions> = {}): Promise<string> {
  const app = createServer({
    indices: new Map([['colours', index]]),
    model,
    fetcher,
    log: () => {},
    web: {
      indexDirs: new Map([['colours', world.indexDir]]),
      modelDir: world.modelDir,
      allowNewStreams: true,
      allowPrivateNetworks: true,
    },
    ...o,
  });
  closers.push(() => app.close());
  return app.listen({ port: 0, host: '127.0.0.1' });
}

beforeAll(async () => {
  [world, browser] = await Promise.all([buildWebWorld(240), launchBrowser()]);
  model = await loadClipModel(world.modelDir);
  index = await openIndex(world.indexDir);
  fetcher = createFetcher({ allowPrivateNetworks: true, timeoutMs: 3000 });
  base = await serve();
}, 120_000);
afterAll(async () => {
  for (const close of closers.reverse()) await close(); // pages before the servers they hold connections to
  await browser?.close();
  await fetcher?.close();
  await model?.close();
  index?.close();
  await world?.close();
});

async function newPage(width = 1280, height = 800): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  closers.push(() => context.close());
  return context.newPage();
}

async function search(page: Page, text: string): Promise<void> {
  await page.getByLabel('Text query').fill(text);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.grid .tile').first().waitFor();
}

/** Waits until no thumbnail is loading; returns each tile's id, similarity and whether it shows as dead. */
async function tiles(page: Page, selector = '.grid .tile') {
  await page.waitForFunction(
    (s) => [...document.querySelectorAll(s)].every((t) => !t.querySelector('.thumb.loading')),
    selector,
    { timeout: 20_000 },
  );
  return page.$$eval(selector, (els) =>
    els.map((el) => ({
      id: Number(el.getAttribute('data-id')),
      similarity: Number(el.getAttribute('data-similarity')),
      dead: el.querySelector('[data-dead]')?.getAttribute('data-dead') ?? null,
      loaded: (el.querySelector('img') as HTMLImageElement | null)?.naturalWidth ?? 0,
    })),
  );
}

/** The count the page shows once it matches the slider's value: "N" or "N+". */
async function shownCount(page: Page): Promise<{ count: string; at: number }> {
  await page.waitForFunction(() => {
    const out = document.querySelector('output.count');
    return out && !out.classList.contains('stale') && out.getAttribute('data-count');
  });
  return page.evaluate(() => ({
    count: document.querySelector('output.count')!.getAttribute('data-count')!,
    at: Number((document.querySelector('input[type=range]') as HTMLInputElement).value),
  }));
}

describe('explorer', () => {
  it('a query shows thumbnails best first, each at or above the threshold; dead links show as dead; nothing comes from elsewhere', async () => {
    const page = await newPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    await page.goto(base);
    await search(page, 'red');
    const shown = await tiles(page);
    expect(shown.length).toBeGreaterThan(20);
    const sims = shown.map((t) => t.similarity);
    expect(sims).toEqual([...sims].sort((a, b) => b - a));
    const threshold = Number(await page.getByLabel('Threshold', { exact: true }).inputValue());
    expect(sims.every((s) => s >= threshold)).toBe(true);
    for (const t of shown) {
      const fate = world.rows[t.id]!.fate;
      if (fate === 'ok') expect([t.id, t.loaded > 0, t.dead]).toEqual([t.id, true, null]);
      else expect([t.id, t.dead]).toEqual([t.id, fate === 'dead' ? 'http_404' : 'not_an_image']);
    }
    expect(shown.some((t) => t.dead !== null)).toBe(true);
    // the slider moved up by the keyboard: the grid keeps only what lies above
    await page.getByLabel('Minimum similarity').focus();
    for (let i = 0; i < 20; i++) await page.keyboard.press('ArrowRight');
    const { at } = await shownCount(page);
    const above = await tiles(page);
    expect(above.length).toBeLessThan(shown.length);
    expect(above.every((t) => t.similarity >= at)).toBe(true);
    await screenshot(page, 'explorer');
    expect(
      requested.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('blob:') && !u.startsWith('data:')),
    ).toEqual([]); // no CDN: works offline
  });

  it("the slider's count is what `clipstream query --min-similarity` returns for the same value; the edge rows lie on each side", async () => {
    const page = await newPage();
    await page.goto(base);
    await search(page, 'red');
    const slider = page.getByLabel('Minimum similarity');
    for (const steps of [3, 5]) {
      // from the lowest result's similarity up, below the best one
      await slider.focus();
      for (let i = 0; i < steps; i++) await page.keyboard.press('ArrowRight');
      const { count, at } = await shownCount(page);
      const lines = (
        await cli(
          'query',
          '--index',
          world.indexDir,
          '--model',
          world.modelDir,
          '--text',
          'red',
          '--min-similarity',
          String(at),
          '--format',
          'jsonl',
        )
      )
        .trim()
        .split('\n')
        .filter(Boolean);
      expect(count).toBe(String(lines.length));
      const aboveEdge = await tiles(page, '[aria-label="just above"] .tile');
      const belowEdge = await tiles(page, '[aria-label="just below"] .tile');
      expect(aboveEdge.length).toBeGreaterThan(0);
      expect(belowEdge.length).toBeGreaterThan(0);
      expect(aboveEdge.every((t) => t.similarity >= at)).toBe(true);
      expect(belowEdge.every((t) => t.similarity < at)).toBe(true);
      const lowest = Math.min(...lines.map((l) => (JSON.parse(l) as { similarity: number }).similarity));
      expect(Math.min(...aboveEdge.map((t) => t.similarity))).toBeCloseTo(lowest, 3);
    }
  });

  it('keyboard only: search, move the threshold, open a result, more like this, close, add to the spec', async () => {
    const page = await newPage();
    await page.goto(base);
    await tabTo(page, 'input[type=search]');
    await page.keyboard.type('yellow');
    await page.keyboard.press('Enter');
    await page.locator('.grid .tile').first().waitFor();
    await tabTo(page, 'input[type=range]');
    await page.keyboard.press('ArrowRight');
    await shownCount(page);
    await tabTo(page, '.grid .tile');
    const first = Number(await page.evaluate(() => document.activeElement!.getAttribute('data-id')));
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(world.rows[first]!.url);
    await tabTo(page, 'dialog button:first-of-type');
    expect(await page.evaluate(() => document.activeElement!.textContent)).toBe('More like this');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => !document.querySelector('dialog[open]'));
    await page.locator('.grid .tile').first().waitFor();
    expect(await page.getByLabel('Query name').inputValue()).toBe(`like-${first}`);
    await tabTo(page, 'form[aria-label="add to spec"] button');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Escape');
    await tabTo(page, 'nav a[href="#spec"]', { backwards: true });
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Spec', exact: true }).waitFor();
    expect(await page.getByLabel('spec.yaml').textContent()).toContain(`name: like-${first}`);
  });

  it('an image query by choosing a file, pasting, dropping, or by URL gives the rows of its colour first', async () => {
    const page = await newPage();
    await page.goto(base);
    const yellowPng = (await solidImage([220, 200, 30], 'png', 24, 24)).toString('base64');
    /** The shade of the best row of the search `action` starts, once the page shows it first. */
    const bestShade = async (action: () => Promise<unknown>) => {
      const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/api/search')), action()]);
      const id = ((await response.json()) as { results: { id: number }[] }).results[0]!.id;
      await page.waitForFunction(
        (id) => document.querySelector('.grid .tile')?.getAttribute('data-id') === String(id),
        id,
      );
      return world.rows[id]!.shade;
    };
    const file = { name: 'yellow.png', mimeType: 'image/png', buffer: Buffer.from(yellowPng, 'base64') };
    expect(
      await bestShade(() => page.getByLabel('Query image (choose, paste or drop)').setInputFiles(file)),
    ).toBeGreaterThan(90); // shade 100: (220, 200, 30)
    expect(await page.getByLabel('Query name').inputValue()).toBe('yellow');
    for (const event of ['paste', 'drop'] as const) {
      const shade = await bestShade(() =>
        page.evaluate(
          ({ b64, event }) => {
            const file = new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'pasted.png', {
              type: 'image/png',
            });
            const data = new DataTransfer();
            data.items.add(file);
            if (event === 'paste') document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data }));
            else
              document
                .querySelector('.drop')!
                .dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
          },
          { b64: yellowPng, event },
        ),
      );
      expect(shade).toBeGreaterThan(90);
    }
    await page.getByLabel('Image URL').fill(`${world.server.url}/img/24x24.png?color=dc1e1e`);
    expect(await bestShade(() => page.getByRole('button', { name: 'Search by URL' }).click())).toBeLessThan(10); // red
  });

  it('is readable at phone width: nothing wider than the screen', async () => {
    const page = await newPage(390, 844);
    await page.goto(base);
    await search(page, 'orange');
    await tiles(page);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, 'phone');
  });
});

describe('spec and dashboard', () => {
  /** Adds the current search at the slider's value as a query of `count` samples. */
  async function addQuery(page: Page, text: string, steps: number, count: number): Promise<void> {
    await search(page, text);
    await page.getByLabel('Minimum similarity').focus();
    for (let i = 0; i < steps; i++) await page.keyboard.press('ArrowRight');
    await shownCount(page);
    await page.getByLabel('Count', { exact: true }).fill(String(count));
    await page.getByRole('button', { name: /^Add to spec/ }).click();
  }

  it('a spec built in the page, exported and given to `clipstream plan`, gives the counts the page showed', async () => {
    const page = await newPage();
    await page.goto(base);
    await addQuery(page, 'red', 10, 40);
    await addQuery(page, 'orange', 5, 25);
    await page.getByRole('link', { name: /^Spec/ }).click();
    await page.getByLabel('Partitions (world_size × num_workers)').fill('2');
    await page.getByRole('button', { name: 'Plan', exact: true }).click();
    await page.locator('table.plan tbody tr').first().waitFor();
    const shown = await page.$$eval('table.plan tbody tr', (rows) =>
      rows.map((r) => [
        r.getAttribute('data-query'),
        ...['requested', 'available', 'planned', 'delivered', 'quota'].map(
          (f) => r.querySelector(`[data-field=${f}]`)!.textContent,
        ),
      ]),
    );
    expect(shown.map((r) => r[0])).toEqual(['red', 'orange']);
    await screenshot(page, 'spec');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download spec.yaml' }).click(),
    ]);
    const dir = await tempDir();
    const file = join(dir, 'spec.yaml');
    await download.saveAs(file);
    expect(await readFile(file, 'utf8')).toBe(await page.getByLabel('spec.yaml').textContent());
    const table = await cli('plan', file, '--output', join(dir, 'plan'), '--partitions', '2');
    // query  requested  available  planned  delivered (P=2)  per partition
    const fromCli = table
      .split('\n')
      .filter((l) => /^(red|orange)\s/.test(l))
      .map((l) => l.trim().split(/\s+/));
    expect(fromCli).toEqual(shown);
  });

  it('a stream started from the page and read by a client shows on the dashboard the counts the client received', async () => {
    const page = await newPage();
    await page.goto(base);
    await addQuery(page, 'red', 10, 16);
    await addQuery(page, 'yellow', 5, 8);
    await page.getByRole('link', { name: /^Spec/ }).click();
    await page.getByLabel('Image size').fill('64');
    await page.getByLabel('Allow private networks').check();
    await page.getByLabel('Stream name').fill('fromthepage');
    await page.getByRole('button', { name: 'Start stream' }).click();
    const url = await page.locator('code.url').textContent();
    expect(url).toBe(`${base}/streams/fromthepage/{0..0}.tar?partitions=1`);
    expect(await page.getByLabel('python').textContent()).toContain(
      `ClipStreamDataset("${base}", stream="fromthepage"`,
    );
    // a client reads the partition
    const tar = Buffer.from(await (await fetch(`${base}/streams/fromthepage/0.tar?partitions=1`)).arrayBuffer());
    const dir = await tempDir();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'p.tar'), tar);
    const received: Record<string, number> = {};
    for await (const s of readTarSamples(join(dir, 'p.tar'))) {
      const q = (JSON.parse(String(s.json)) as { query: string }).query;
      received[q] = (received[q] ?? 0) + 1;
    }
    expect(received).toEqual({ red: 16, yellow: 8 });
    await page.locator('nav').getByRole('link', { name: 'Dashboard' }).click();
    const panel = page.locator('article[data-job="fromthepage"]');
    await page.waitForFunction(
      () => document.querySelector('article[data-job="fromthepage"] h3 [data-field=delivered]')?.textContent === '24',
      undefined,
      { timeout: 10_000 },
    );
    const perQuery = await panel
      .locator('table.progress tbody tr')
      .evaluateAll((rows) =>
        rows.map((r) => [r.getAttribute('data-query'), Number(r.querySelector('[data-field=delivered]')!.textContent)]),
      );
    expect(Object.fromEntries(perQuery)).toEqual(received);
    expect(await panel.locator('[aria-label="latest samples of fromthepage"] li').count()).toBe(24);
    await page.waitForFunction(() =>
      [...document.querySelectorAll('article[data-job="fromthepage"] .recent')].every(
        (li) => (li.querySelector('img') as HTMLImageElement | null)?.naturalWidth,
      ),
    );
    await page.waitForTimeout(1500); // a few points on the chart
    await screenshot(page, 'dashboard');
  });
});

describe('access', () => {
  it('with a token, the page without it is refused; opened once with ?token= it works and keeps it', async () => {
    const token = 'a-token-for-the-page';
    const locked = await serve({ token });
    const page = await newPage();
    const refused = await page.goto(locked);
    expect(refused!.status()).toBe(401);
    expect(await page.textContent('body')).toContain('UNAUTHORIZED');
    await page.goto(`${locked}/?token=${token}`);
    await page.getByLabel('Text query').waitFor();
    expect(page.url()).toBe(`${locked}/`); // the token left the address bar
    await page.reload();
    await search(page, 'red'); // the API and the thumbnails go through with the cookie
    expect((await tiles(page)).some((t) => t.loaded > 0)).toBe(true);
  });
});
