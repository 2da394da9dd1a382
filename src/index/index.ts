export { buildIndex, ANN_THRESHOLD, type BuildIndexOptions } from './build.js';
export { openIndex, type Index, type SearchQuery, type SearchResult } from './search.js';
export { readIndexInfo, type IndexInfo } from './info.js';
