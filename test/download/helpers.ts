import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { readTarSamples, type TarSample } from '../../src/io/tar-read.js';

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function writeCsv(path: string, header: string[], rows: (string | number | null)[][]): Promise<string> {
  const cell = (v: string | number | null) =>
    v === null ? '' : typeof v === 'number' ? String(v) : `"${v.replaceAll('"', '""')}"`;
  await writeFile(path, [header.join(','), ...rows.map((r) => r.map(cell).join(','))].join('\n') + '\n');
  return path;
}

export async function readParquetRows(path: string): Promise<Record<string, unknown>[]> {
  const file = await asyncBufferFromFile(path);
  return (await parquetReadObjects({ file, utf8: false })) as Record<string, unknown>[];
}

export async function readAllTars(folder: string): Promise<TarSample[]> {
  const out: TarSample[] = [];
  for (const name of (await readdir(folder)).filter((f) => f.endsWith('.tar')).sort()) {
    for await (const s of readTarSamples(join(folder, name))) out.push(s);
  }
  return out;
}

export async function readStats(folder: string, shard = '00000'): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(folder, `${shard}_stats.json`), 'utf8')) as Record<string, unknown>;
}
