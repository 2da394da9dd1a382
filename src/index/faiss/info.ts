/** What `clipstream index info DIR|URL` prints for a faiss folder: everything read from headers and footers only. */
import { openFaissFolder, type OpenFaissFolderOptions } from './folder.js';
import type { FaissIndexInfo } from './open.js';

export interface FaissFolderInfo extends FaissIndexInfo {
  folder: string;
  /** Where nprobe / efSearch came from. */
  paramsFrom: 'options' | 'infos' | 'index file';
  /** autofaiss's index_key / index_param, when the folder has its infos JSON. */
  indexKey?: string;
  indexParam?: string;
  metadata?: {
    format: 'parquet' | 'arrow';
    files: { name: string; rows: number; bytes: number }[];
    rows: number;
    columns: string[];
  };
  /** Metadata rows = index vectors (true without metadata). */
  aligned: boolean;
  misalignment?: string;
  /** Index files and metadata files together. */
  totalBytesOnDisk: number;
}

export async function faissFolderInfo(folder: string, opts: OpenFaissFolderOptions = {}): Promise<FaissFolderInfo> {
  const opened = await openFaissFolder(folder, { ...opts, allowMisaligned: true });
  try {
    const { index, metadata, infos } = opened;
    const files = metadata?.files.map((f) => ({ name: f.name, rows: f.rows, bytes: f.bytes }));
    return {
      folder,
      ...index.info,
      paramsFrom: opened.paramsFrom,
      ...(typeof infos?.index_key === 'string' ? { indexKey: infos.index_key } : {}),
      ...(typeof infos?.index_param === 'string' ? { indexParam: infos.index_param } : {}),
      ...(metadata
        ? {
            metadata: {
              format: metadata.files[0]!.format,
              files: files!,
              rows: metadata.rows,
              columns: metadata.columns,
            },
          }
        : {}),
      aligned: opened.aligned,
      ...(opened.misalignment ? { misalignment: opened.misalignment } : {}),
      totalBytesOnDisk: index.info.bytesOnDisk + (files ?? []).reduce((sum, f) => sum + f.bytes, 0),
    };
  } finally {
    await opened.close();
  }
}
