import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/run.js';
import { demoImage, palette } from '../../src/demo/world.js';
import { tempDir } from '../helpers/tmp.js';

describe('clipstream demo', () => {
  it('downloads the demo world into shards whose images have the colour their caption names, and draws a contact sheet', async () => {
    const dir = await tempDir();
    const count = 60;
    const result = await runDemo({ outputFolder: dir, count });
    const expectedOk = Array.from({ length: count }, (_, i) => demoImage(i)).filter((d) => d.fate === 'ok').length;
    expect(result.download.count).toBe(count);
    expect(result.download.successes).toBe(expectedOk);
    expect(result.download.reasons).toMatchObject({ http_404: expect.any(Number), not_an_image: expect.any(Number) });
    expect(result.delivered).toBe(expectedOk);
    expect(result.colourMatches).toBe(expectedOk);
    const sheet = await sharp(result.contactSheet).metadata();
    expect(sheet.format).toBe('png');
    expect(sheet.height).toBeGreaterThanOrEqual(palette.length * 96);
  });
});
