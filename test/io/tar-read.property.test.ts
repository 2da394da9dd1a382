import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { readTarSamples, type TarSample } from '../../src/io/tar-read.js';
import { damaged, outcomeOf, runs } from '../helpers/property.js';
import { tempDir } from '../helpers/tmp.js';

// For any bytes, the webdataset tar reader gives samples or refuses the tar with a ClipstreamError: never another
// exception, never a hang, never a member held past its byte limit.

const MAX_MEMBER = 4096;

const memberName = fc.oneof(
  fc
    .tuple(fc.stringMatching(/^[a-z0-9_/]{1,12}$/), fc.constantFrom('jpg', 'txt', 'json', 'seg.png', 'npy', ''))
    .map(([k, e]) => (e ? `${k}.${e}` : k)),
  fc.string({ maxLength: 120 }),
  fc.constant('a'.repeat(150) + '.jpg'), // a pax name
);

const member = fc.record({
  name: memberName,
  data: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constant(new Uint8Array(MAX_MEMBER + 1))),
  type: fc.constantFrom('file' as const, 'file' as const, 'directory' as const, 'symlink' as const),
});

async function packed(
  members: { name: string; data: Uint8Array; type: 'file' | 'directory' | 'symlink' }[],
): Promise<Uint8Array> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const m of members) {
    if (m.type === 'file') pack.entry({ name: m.name || 'x', size: m.data.length }, Buffer.from(m.data));
    else if (m.type === 'directory') pack.entry({ name: m.name || 'd', type: 'directory' });
    else pack.entry({ name: m.name || 'l', type: 'symlink', linkname: 'elsewhere' });
  }
  pack.finalize();
  await done;
  return new Uint8Array(Buffer.concat(chunks));
}

const validTar = fc.array(member, { maxLength: 6 });

async function collect(source: string | Readable): Promise<TarSample[]> {
  const out: TarSample[] = [];
  for await (const s of readTarSamples(source, { maxMemberBytes: MAX_MEMBER })) out.push(s);
  return out;
}

function checkSamples(samples: TarSample[]): void {
  for (const s of samples) {
    expect(typeof s.__key__).toBe('string');
    for (const [ext, value] of Object.entries(s)) {
      if (ext === '__key__') continue;
      expect(Buffer.isBuffer(value)).toBe(true);
      expect((value as Buffer).length).toBeLessThanOrEqual(MAX_MEMBER);
    }
  }
}

describe('tar reader (property)', () => {
  it('any bytes, a valid tar, or a damaged one: samples within the member limit or a ClipstreamError, within a deadline', async () => {
    const dir = await tempDir();
    let n = 0;
    const content = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }),
      validTar.map((ms) => ({ ms })),
      validTar.map((ms) => ({ ms, damage: true })),
    );
    await fc.assert(
      fc.asyncProperty(content, fc.nat(), async (c, seed) => {
        let bytes: Uint8Array;
        if (c instanceof Uint8Array) bytes = c;
        else {
          bytes = await packed(c.ms);
          if ('damage' in c) bytes = fc.sample(damaged(bytes), { numRuns: 1, seed })[0]!;
        }
        const path = join(dir, `t${n++}.tar`);
        await writeFile(path, bytes);
        const fromFile = await outcomeOf(() => collect(path));
        if (fromFile.ok) checkSamples(fromFile.value);
        // the same bytes as a stream arriving in small chunks (the HTTP case)
        const chunks = Array.from({ length: Math.ceil(bytes.length / 97) }, (_, i) =>
          Buffer.from(bytes.subarray(i * 97, (i + 1) * 97)),
        );
        const fromStream = await outcomeOf(() => collect(Readable.from(chunks)));
        expect(fromStream.ok).toBe(fromFile.ok);
        if (fromStream.ok && fromFile.ok) expect(fromStream.value).toEqual(fromFile.value);
      }),
      { numRuns: runs(120) },
    );
  });
});
