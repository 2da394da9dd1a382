/**
 * Reading LAION's / clip-retrieval's faiss indexes and metadata in place (no Python, no native build): see
 * docs/faiss.md. Entry points: openFaissFolder (index + metadata + infos, checked), openFaissBackend (a
 * SearchBackend), openFaissIndex / openFaissParts (an index alone), openMetadata, faissFolderInfo (index info).
 */
export { openFaissIndex, openFaissParts } from './open.js';
export type {
  FaissIndex,
  FaissIndexInfo,
  FaissSearchParams,
  Neighbors,
  OpenFaissOptions,
  RangeOptions,
} from './open.js';
export { openFaissFolder, parseParams } from './folder.js';
export type { FaissFolder, OpenFaissFolderOptions } from './folder.js';
export { openFaissBackend } from './backend.js';
export type { FaissBackend } from './backend.js';
export { openMetadata, openMetadataFiles, listMetadataFolder } from './metadata.js';
export type { Metadata, MetadataFileInfo, MetadataFormat, OpenMetadataOptions } from './metadata.js';
export { faissFolderInfo } from './info.js';
export type { FaissFolderInfo } from './info.js';
export type { Metric } from './format.js';
