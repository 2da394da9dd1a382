import { Command, Option } from 'commander';
import { loadClipModel } from '../clip/index.js';
import { invalidOption } from '../core/errors.js';
import { openIndexAt } from '../index/open-backend.js';
import type { SearchResult } from '../index/search.js';
import { MAX_SEARCH_RESULTS } from '../index/limits.js';
import { embedQuery, needsModel } from '../select/query-embedding.js';
import { toLocalPath, toNumber } from './parse.js';

/** `clipstream query`: nearest neighbours of a text, an image or an embedding. */
export function queryCommand(): Command {
  return new Command('query')
    .description('Search an index by text, image or embedding; prints the results best first')
    .requiredOption(
      '--index <dir-or-url>',
      'index folder (clipstream index --output), or a clip-retrieval / LAION faiss folder (a path or an http(s) URL)',
      toLocalPath('--index', { urls: true }),
    )
    .option('--text <text>', 'query text (needs --model)')
    .option(
      '--image <path-or-url>',
      'query image: a file or an http(s) URL (needs --model)',
      toLocalPath('--image', { urls: true }),
    )
    .option(
      '--embedding-file <npy>',
      'query embedding: a .npy with one row (a file or an http(s) URL)',
      toLocalPath('--embedding-file', { urls: true }),
    )
    .option('--model <dir>', 'CLIP model folder to embed --text / --image', toLocalPath('--model'))
    .option('--num-results <k>', 'results when no --min-similarity is given', toNumber('--num-results'), 10)
    .option(
      '--min-similarity <s>',
      'every result at or above this similarity (up to 10 000)',
      toNumber('--min-similarity'),
    )
    .option('--where <sql>', 'predicate on metadata columns, e.g. "width >= 256"')
    .addOption(new Option('--format <f>', 'output format').choices(['table', 'jsonl']).default('table'))
    .action(
      async (flags: {
        index: string;
        text?: string;
        image?: string;
        embeddingFile?: string;
        model?: string;
        numResults: number;
        minSimilarity?: number;
        where?: string;
        format: 'table' | 'jsonl';
      }) => {
        const kinds = [flags.text, flags.image, flags.embeddingFile].filter((v) => v !== undefined).length;
        if (kinds !== 1) throw invalidOption('Expected exactly one of --text, --image or --embedding-file');
        if (flags.minSimilarity !== undefined && (flags.minSimilarity < -1 || flags.minSimilarity > 1)) {
          throw invalidOption(
            `Expected a similarity in [-1, 1] for --min-similarity but received ${flags.minSimilarity}`,
          );
        }
        if (!Number.isInteger(flags.numResults) || flags.numResults < 1 || flags.numResults > MAX_SEARCH_RESULTS) {
          throw invalidOption(
            `Expected an integer from 1 to ${MAX_SEARCH_RESULTS} for --num-results but received ${flags.numResults}`,
          );
        }
        const vector = await queryVector(flags);
        const { index } = await openIndexAt(flags.index);
        try {
          const results = await index.search({
            vector,
            k: flags.numResults,
            minSimilarity: flags.minSimilarity,
            where: flags.where,
            dedupUrls: true,
          });
          process.stdout.write(
            flags.format === 'jsonl'
              ? results.map((r) => JSON.stringify(r)).join('\n') + (results.length ? '\n' : '')
              : table(results),
          );
        } finally {
          index.close();
        }
      },
    );
}

async function queryVector(flags: {
  text?: string;
  image?: string;
  embeddingFile?: string;
  model?: string;
}): Promise<Float32Array> {
  const source = { text: flags.text, image: flags.image, embedding_file: flags.embeddingFile };
  const what = flags.text !== undefined ? '--text' : flags.image !== undefined ? '--image' : '--embedding-file';
  if (!needsModel(source)) return embedQuery(source, undefined, what);
  if (!flags.model) throw invalidOption('--text and --image need --model (the CLIP model folder that built the index)');
  const model = await loadClipModel(flags.model);
  try {
    return await embedQuery(source, model, what);
  } finally {
    await model.close();
  }
}

function table(results: SearchResult[]): string {
  if (results.length === 0) return 'no results\n';
  const show = ['url', 'caption'].filter((c) => c in results[0]!);
  const lines = results.map((r) =>
    [r.similarity.toFixed(4), String(r.id), ...show.map((c) => String(r[c] ?? '').slice(0, 70))].join('  '),
  );
  return ['similarity  id  ' + show.join('  '), ...lines].join('\n') + '\n';
}
