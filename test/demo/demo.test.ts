import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/run.js';
import { tempDir } from '../helpers/tmp.js';

describe('clipstream demo', () => {
  it('streams colour queries from the demo world: exact counts, every image of its colour, dead links replaced, a contact sheet', async () => {
    const dir = await tempDir();
    const result = await runDemo({
      outputFolder: dir,
      count: 300,
      queries: [
        { name: 'red', text: 'red', count: 30 },
        { name: 'blue', text: 'blue', count: 20 },
        { name: 'green', text: 'green', count: 10 },
      ],
    });
    expect(result.delivered).toBe(60);
    expect(result.stream.byQuery).toEqual({ red: 30, blue: 20, green: 10 });
    expect(result.colourMatches).toBe(60);
    const stats = result.stream.stats.snapshot();
    expect(stats.failures).toBeGreaterThan(0); // 1 in 9 links is dead: some were met and replaced
    expect(stats.attempts).toBe(60 + stats.failures);
    const sheet = await sharp(result.contactSheet).metadata();
    expect(sheet.format).toBe('png');
    expect(sheet.height).toBeGreaterThanOrEqual(3 * 96);
    expect(result.contactSheetRows).toEqual(['red', 'blue', 'green']); // the spec's order (they were sorted: blue, green, red)
  });
});
