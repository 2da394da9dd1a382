import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createTarSampleStream } from '../../src/sink/index.js';
import { readTarSamples } from '../../src/io/tar-read.js';
import { failedRecord, readTarMembers, successRecord } from './helpers.js';

describe('createTarSampleStream', () => {
  it('writes webdataset members (image, txt, json) contiguously per sample, skipping failures', async () => {
    const stream = createTarSampleStream({ mtime: new Date(1_600_000_000_000) });
    const parsed = readTarMembers(stream.readable);
    const records = [
      successRecord('000000000', { caption: 'a red cat' }),
      failedRecord('000000001', 'failed_to_download', 'http_404', 'nope', { caption: 'lost' }),
      successRecord('000000002', { caption: '' }),
      successRecord('000000003'),
    ];
    // overlapping calls still give contiguous samples
    await Promise.all(records.map((r) => stream.writeSample(r)));
    await stream.finish();
    const members = await parsed;
    expect(members.map((m) => m.name)).toEqual([
      '000000000.jpg',
      '000000000.txt',
      '000000000.json',
      '000000002.jpg',
      '000000002.txt',
      '000000002.json',
      '000000003.jpg',
      '000000003.json',
    ]);
    expect(members.every((m) => m.mode === 0o644 && m.type === 'file')).toBe(true);
    expect(members[0]!.data).toEqual(records[0]!.image!.data);
    expect(members[1]!.data.toString()).toBe('a red cat');
    expect(members[4]!.data.toString()).toBe('');
    const json = members[2]!.data.toString();
    expect(JSON.parse(json)).toEqual(records[0]!.meta);
    expect(json).toContain('\n    "url": '); // indent 4, like img2dataset
    expect(stream.bytesWritten % 512).toBe(0);
  });

  it('groups back into webdataset samples and handles keys longer than ustar names (pax)', async () => {
    const stream = createTarSampleStream();
    const longKey = 'k'.repeat(180);
    const samples = readTarSamples(stream.readable);
    const collected = (async () => {
      const out = [];
      for await (const s of samples) out.push(s);
      return out;
    })();
    await stream.writeSample(successRecord(longKey, { caption: 'long' }));
    await stream.writeSample(successRecord('short'));
    await stream.finish();
    const got = await collected;
    expect(got.map((s) => s.__key__)).toEqual([longKey, 'short']);
    expect(Object.keys(got[0]!).sort()).toEqual(['__key__', 'jpg', 'json', 'txt']);
    expect((got[0]!.txt as Buffer).toString()).toBe('long');
  });

  it('serialises bigint and bytes in the json', async () => {
    const stream = createTarSampleStream();
    const parsed = readTarMembers(stream.readable);
    const record = successRecord('000000000', { columns: { big: 2n ** 64n + 1n, small: 5n, blob: Buffer.from('hi') } });
    await stream.writeSample(record);
    await stream.finish();
    const json = JSON.parse((await parsed)[1]!.data.toString());
    expect(json).toMatchObject({ big: '18446744073709551617', small: 5, blob: 'aGk=' });
  });

  it('refuses keys with dots or slashes (they would break webdataset grouping)', async () => {
    const stream = createTarSampleStream();
    await expect(stream.writeSample(successRecord('a.b'))).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(stream.writeSample(successRecord('a/b'))).rejects.toMatchObject({ code: 'INTERNAL' });
    stream.destroy();
  });

  it('back-pressure: writeSample waits for a slow consumer, with a bounded number of bytes buffered', async () => {
    const sampleSize = 100_000;
    const stream = createTarSampleStream();
    let consumed = 0;
    let maxBuffered = 0;
    const track = () => {
      maxBuffered = Math.max(maxBuffered, stream.bytesWritten - consumed);
    };

    // No consumer yet: the producer must stall after a few samples.
    let completed = 0;
    const producer = (async () => {
      for (let i = 0; i < 40; i++) {
        await stream.writeSample(successRecord(String(i).padStart(9, '0'), { size: sampleSize }));
        completed += 1;
        track();
      }
      await stream.finish();
    })();
    await sleep(100);
    const stalledAt = completed;
    expect(stalledAt).toBeLessThan(3);
    track();

    // A slow consumer: 16 kB chunks, a pause every chunk.
    stream.readable.pause();
    let reading = true;
    const consumer = (async () => {
      while (reading) {
        const chunk = stream.readable.read(16 * 1024) as Buffer | null;
        if (chunk === null) {
          if (stream.readable.readableEnded) break;
          await new Promise((resolve) => setTimeout(resolve, 1));
          continue;
        }
        consumed += chunk.length;
        track();
      }
    })();
    stream.readable.once('end', () => {
      reading = false;
    });
    await producer;
    // drain what is left
    await new Promise<void>((resolve) => {
      if (stream.readable.readableEnded) resolve();
      else stream.readable.once('end', () => resolve());
      stream.readable.resume();
      stream.readable.on('data', (c: Buffer) => {
        consumed += c.length;
      });
    });
    reading = false;
    await consumer;
    expect(completed).toBe(40);
    expect(consumed).toBe(stream.bytesWritten);
    // One sample in flight + the readable's 64 kB + the pack's 16 kB, with headroom: far from 40 × 100 kB.
    expect(maxBuffered).toBeLessThan(2 * sampleSize + 128 * 1024);
  });

  it('a destroyed readable (client gone) rejects the pending and later writes', async () => {
    const stream = createTarSampleStream();
    await stream.writeSample(successRecord('000000000', { size: 300_000 }));
    let settled = false;
    const pending = stream.writeSample(successRecord('000000001', { size: 300_000 }));
    pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await sleep(20);
    expect(settled).toBe(false); // nobody reads: waiting
    stream.readable.destroy();
    await expect(pending).rejects.toBeInstanceOf(Error);
    await expect(stream.writeSample(successRecord('000000002'))).rejects.toBeInstanceOf(Error);
    await expect(stream.finish()).rejects.toBeInstanceOf(Error);
  });
});
