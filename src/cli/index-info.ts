import { Command, Option } from 'commander';
import type { IndexDescription } from '../index/describe-location.js';
import type { FaissFolderInfo } from '../index/faiss/info.js';
import type { IndexInfo } from '../index/info.js';
import { toLocalPath } from './parse.js';

/** `clipstream index info DIR|URL`: what an index is, from its headers alone. */
export function indexInfoCommand(): Command {
  return new Command('info')
    .description(
      'Describe an index: a clipstream index folder, or a clip-retrieval / LAION faiss folder (a path or an http(s) URL): type, dimension, vectors, lists, PQ, metric, search parameters, bytes, metadata files and rows, and whether rows and vectors agree',
    )
    .argument('<dir-or-url>', 'index folder or URL', toLocalPath('<dir-or-url>', { urls: true }))
    .addOption(new Option('--format <f>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (location: string, flags: { format: 'table' | 'json' }) => {
      const { describeIndexAt } = await import('../index/describe-location.js');
      const description = await describeIndexAt(location);
      process.stdout.write(
        flags.format === 'json' ? JSON.stringify(description, null, 2) + '\n' : describeTable(description),
      );
    });
}

export function describeTable(d: IndexDescription): string {
  const rows = d.kind === 'faiss' ? faissRows(d) : clipstreamRows(d.info, d.bytesOnDisk);
  const width = Math.max(...rows.map(([k]) => k.length));
  return [`${d.location} (${d.kind} index)`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`), ''].join('\n');
}

function faissRows(f: FaissFolderInfo): [string, string][] {
  const metadata = f.metadata;
  const files = (list: { name: string }[]) =>
    list.length <= 3
      ? list.map((x) => shortName(x.name)).join(', ')
      : `${shortName(list[0]!.name)} … ${shortName(list.at(-1)!.name)}`;
  const params = [f.nprobe !== undefined && `nprobe ${f.nprobe}`, f.efSearch !== undefined && `efSearch ${f.efSearch}`]
    .filter(Boolean)
    .join(', ');
  const rows: [string, string][] = [
    ['type', `${f.type}${f.indexKey ? `  (autofaiss index_key ${f.indexKey})` : ''}`],
    ['dimension', String(f.d)],
    ['vectors', count(f.ntotal)],
    ['metric', f.metric === 'inner_product' ? 'inner product (similarity)' : 'L2 (squared distance)'],
  ];
  if (f.nlist !== undefined) rows.push(['lists', `${count(f.nlist)} (${listsWhere(f.lists)})`]);
  if (f.pqSubQuantizers !== undefined) rows.push(['PQ', `${f.pqSubQuantizers} sub-quantizers × 8 bits`]);
  if (params) rows.push(['search', `${params} (from ${paramsSource(f)})`]);
  rows.push(
    ['index files', `${f.files.length}: ${files(f.files)}, ${bytes(f.bytesOnDisk)}`],
    ['in memory', `${bytes(f.residentBytes)} (trained structures and list offsets; lists are read when probed)`],
  );
  if (metadata) {
    const total = metadata.files.reduce((s, x) => s + x.bytes, 0);
    rows.push(
      ['metadata', `${metadata.format}, ${metadata.files.length} files: ${files(metadata.files)}, ${bytes(total)}`],
      ['rows', count(metadata.rows)],
      ['columns', metadata.columns.join(', ')],
    );
  } else rows.push(['metadata', 'none (no metadata/ folder: results have ids only)']);
  rows.push(
    ['on disk', bytes(f.totalBytesOnDisk)],
    [
      'aligned',
      f.aligned ? (metadata ? 'yes: metadata rows = vectors' : 'no metadata to compare') : `NO: ${f.misalignment}`,
    ],
  );
  return rows;
}

function clipstreamRows(info: IndexInfo, onDisk: number): [string, string][] {
  const ann = info.ann;
  const annText =
    ann.type === 'flat'
      ? 'exact search (flat)'
      : ann.type === 'ivf_pq'
        ? `IVF-PQ: ${ann.num_partitions} partitions, ${ann.num_sub_vectors} sub-vectors, nprobes ${ann.nprobes}, refine ×${ann.refine_factor}`
        : `IVF-HNSW-SQ: ${ann.num_partitions} partitions, nprobes ${ann.nprobes}, ef ${ann.ef}`;
  return [
    ['type', annText],
    ['dimension', String(info.dim)],
    ['vectors', count(info.count)],
    ['metric', info.metric],
    ['recall@10', info.recall_at_10.toFixed(3)],
    ['text vectors', info.has_text ? 'yes' : 'no'],
    ['model', info.model ?? 'not recorded'],
    [
      'columns',
      Object.entries(info.columns)
        .map(([c, t]) => `${c} (${t})`)
        .join(', '),
    ],
    ['partitions', info.partitions.join(', ')],
    ['on disk', bytes(onDisk)],
    ['created', `${info.created_at}${info.updated_at !== info.created_at ? `, updated ${info.updated_at}` : ''}`],
  ];
}

const listsWhere = (lists: FaissFolderInfo['lists']) =>
  lists === 'ondisk' ? 'on disk, in the .ivfdata file' : lists === 'none' ? 'empty' : 'in the index files';

const paramsSource = (f: FaissFolderInfo) =>
  f.paramsFrom === 'infos'
    ? `image.json: ${f.indexParam}`
    : f.paramsFrom === 'index file'
      ? 'the index file'
      : 'options';

const shortName = (name: string) => name.split(/[\\/]/).slice(-2).join('/');
const count = (n: number) => n.toLocaleString('en-US');

function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
