export { buildIndex, ANN_THRESHOLD, type BuildIndexOptions, type IndexType } from './build.js';
export {
  openIndex,
  type Index,
  type SearchBackend,
  type SearchQuery,
  type SearchResult,
  type SearchResults,
} from './search.js';
export { openRemoteIndex, type RemoteIndexOptions } from './remote.js';
export { readIndexInfo, type IndexInfo } from './info.js';
