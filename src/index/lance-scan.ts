/**
 * A streamed exact search over a clipstream (LanceDB) table: the table is read batch by batch (ids, vectors and
 * metadata; `where` applied by LanceDB) and each row's similarity computed here, so that every row at or above a
 * threshold comes out in bounded memory — LanceDB's own vector search sorts its whole result, which for a plan of
 * millions of rows is the whole result in memory. Similarities are dot products of the stored float32 vectors, as
 * LanceDB's exact search computes them (to float32 rounding).
 */
import type { Table } from '@lancedb/lancedb';
import type { IndexInfo } from './info.js';
import type { ResultBatch, StreamQuery } from './search.js';

/** A row exactly at the threshold must not be lost to rounding (as the exact search's SLACK). */
const SLACK = 1e-6;

interface ArrowData {
  offset: number;
  length: number;
  children: { offset: number; values: Float32Array }[];
}

export async function* scanAbove(
  table: Table,
  info: IndexInfo,
  q: StreamQuery,
  describeError: (err: unknown) => unknown,
): AsyncGenerator<ResultBatch> {
  const column = q.column ?? 'vector';
  const metaColumns = Object.keys(info.columns);
  let query = table.query().select(['id', column, ...metaColumns]);
  if (q.where) query = query.where(q.where);
  const min = q.minSimilarity - SLACK;
  let scanned = 0;
  const batches = query[Symbol.asyncIterator]();
  for (;;) {
    let next;
    try {
      next = await batches.next();
    } catch (err) {
      throw describeError(err);
    }
    if (next.done) return;
    const batch = next.value;
    const out: ResultBatch = { ids: [], similarities: [], rows: [] };
    const ids = batch.getChild('id')!;
    const vectors = batch.getChild(column)!;
    const metadata = metaColumns.map((c) => batch.getChild(c));
    let row = 0;
    for (const data of vectors.data as unknown as ArrowData[]) {
      const child = data.children[0]!;
      for (let i = 0; i < data.length; i++, row++) {
        const start = child.offset + (data.offset + i) * info.dim;
        const s = dot(q.vector, child.values, start, info.dim);
        if (!(s >= min)) continue;
        out.ids.push(Number(ids.get(row)));
        out.similarities.push(s);
        const values: Record<string, unknown> = {};
        metaColumns.forEach((c, k) => {
          const v: unknown = metadata[k]?.get(row);
          values[c] = typeof v === 'bigint' ? Number(v) : v;
        });
        out.rows!.push(values);
      }
    }
    scanned += batch.numRows;
    out.progress = { done: scanned, total: info.count };
    yield out;
  }
}

function dot(q: Float32Array, values: Float32Array, start: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let j = 0;
  for (; j + 2 <= d; j += 2) {
    s0 += q[j]! * values[start + j]!;
    s1 += q[j + 1]! * values[start + j + 1]!;
  }
  if (j < d) s0 += q[j]! * values[start + j]!;
  return Math.fround(s0 + s1);
}
