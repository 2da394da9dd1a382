/**
 * clip back's near-duplicate removal (`connected_components_dedup`): the results' vectors are scaled to unit length,
 * every pair with a cosine strictly above the threshold (faiss's range search keeps scores > radius) is linked, and
 * of each connected group only its best-ranked result (the first in the list) is kept. So a result linked only to a
 * result that is itself dropped is dropped too, as clip back drops it.
 *
 * Every pair is compared: n²/2 dot products, which is what clip back's IndexFlatIP range search does (≤ 10 000
 * results a request). Plans bound the results a query may dedup this way (src/select/plan-search.ts).
 */
export function nearDuplicatesKept(vectors: Float32Array[], threshold: number): boolean[] {
  const unit = vectors.map(unitLength);
  const parent = Int32Array.from(unit.keys());
  const root = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  for (let i = 0; i < unit.length; i++) {
    for (let j = i + 1; j < unit.length; j++) {
      if (dot(unit[i]!, unit[j]!) <= threshold) continue;
      const [a, b] = [root(i), root(j)];
      // The smaller index stays the root: a group's root is its best-ranked member.
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
  }
  return unit.map((_, i) => root(i) === i);
}

function unitLength(v: Float32Array): Float32Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  return norm > 0 ? v.map((x) => x / norm) : v;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
