/**
 * Most rows one index search may ask for: LanceDB takes its limit (and HNSW's ef) as a 32-bit unsigned integer and
 * wraps a larger one (a limit of 2^32 + 15 returned 15 rows). Kept apart from search.ts so that the spec parser
 * can bound counts without loading LanceDB.
 */
export const MAX_SEARCH_RESULTS = 2 ** 32 - 1;
