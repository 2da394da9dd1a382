import { hintForReason } from '../core/failure-hints.js';
import type { DownloadOptions } from './options.js';

/** What a job that saved nothing knows about why. */
export interface NoSuccessFacts {
  count: number;
  successes: number;
  /** Failure reason → count. */
  reasons: Record<string, number>;
  /** The url of the list's first row, when this run read it. */
  firstUrl: string | undefined;
}

/**
 * When rows were processed and none succeeded: a sentence on the most common failure and what to do about it,
 * for the summary. undefined when something succeeded or nothing ran.
 */
export function explainNoSuccess(f: NoSuccessFacts, o: Pick<DownloadOptions, 'inputFormat'>): string | undefined {
  if (f.count === 0 || f.successes > 0) return undefined;
  const [reason, n] = Object.entries(f.reasons).sort((a, b) => b[1] - a[1])[0] ?? ['unknown', f.count];
  const share = `${n} of ${f.count}`;
  const header = headerLike(f.firstUrl, o.inputFormat);
  if (header) {
    const format = header === 'tsv' ? 'tsv' : 'csv';
    return (
      `no sample was saved (${reason}: ${share}); the first row, ${JSON.stringify(clip(f.firstUrl!))}, looks like a ${format} header or row ` +
      `read as a url: --input-format ${o.inputFormat} reads every line as one url. Use --input-format ${format}${o.inputFormat.endsWith('.gz') ? '.gz' : ''} (and --url-col / --caption-col)`
    );
  }
  const advice = hintForReason(reason, 'cli');
  return `no sample was saved: the most common failure is ${reason} (${share})${advice ? `; ${advice}` : ''}`;
}

/** txt reads every line as a url: a first line such as `url`, `url,caption` or `url\tcaption` is a header. */
function headerLike(firstUrl: string | undefined, inputFormat: string): 'csv' | 'tsv' | undefined {
  if (firstUrl === undefined || !inputFormat.startsWith('txt')) return undefined;
  const line = firstUrl.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(line) && !/[,\t]/.test(line)) return undefined;
  if (line.includes('\t')) return 'tsv';
  if (line.includes(',') || /^["']?(url|link|image_?url|src)["']?$/i.test(line)) return 'csv';
  return undefined;
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
