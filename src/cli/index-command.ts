import { Command, Option } from 'commander';
import { invalidOption } from '../core/errors.js';
import { buildIndex, type IndexType } from '../index/index.js';
import { TARGET_RECALL } from '../index/recall.js';
import { countProgress } from './count-progress.js';
import { indexInfoCommand } from './index-info.js';
import { toLocalPath } from './parse.js';

/** `clipstream index`: a clip-retrieval embedding folder → a LanceDB index folder; `clipstream index info`. */
export function indexCommand(): Command {
  const command = new Command('index')
    .description(
      'Import a clip-retrieval embedding folder (img_emb/, metadata/) into an index folder; rerun to append new partitions',
    )
    // Not requiredOption: commander checks those before it dispatches `index info`.
    .option(
      '--embeddings <dir>',
      '(required) embedding folder: img_emb/img_emb_{P}.npy + metadata/metadata_{P}.parquet, local or s3://bucket/prefix',
      toLocalPath('--embeddings', { s3: true }),
    )
    .option('--output <dir>', '(required) index folder to create or extend', toLocalPath('--output'))
    .addOption(new Option('--metric <m>', 'similarity').choices(['ip', 'cosine']).default('ip'))
    .addOption(
      new Option(
        '--index-type <t>',
        'auto: exact below 30 000 rows, IVF-PQ above; ivf_hnsw_sq: 5 × faster queries for a long-running serve, but loads its whole graph at open',
      )
        .choices(['auto', 'flat', 'ivf_hnsw_sq', 'ivf_pq'])
        .default('auto'),
    )
    .option('--model <name>', 'the model that made the embeddings, recorded in clipstream.json')
    .action(
      async (flags: {
        embeddings?: string;
        output?: string;
        metric: 'ip' | 'cosine';
        indexType: IndexType;
        model?: string;
      }) => {
        const { embeddings, output } = flags;
        if (embeddings === undefined || output === undefined)
          throw invalidOption('Expected --embeddings DIR and --output DIR', {
            hint: 'clipstream index --embeddings EMBEDDING_FOLDER --output DIR builds an index; clipstream index info DIR|URL describes one.',
          });
        const start = performance.now();
        const progress = countProgress('index', 'rows');
        const notes: string[] = [];
        const info = await buildIndex({
          ...flags,
          embeddings,
          output,
          onProgress: (done, total) => progress.update(done, total),
          onNote: (note) => notes.push(note),
        }).finally(() => {
          progress.stop();
          for (const note of notes) process.stderr.write(`clipstream: note: ${note}\n`);
        });
        process.stdout.write(
          `done in ${((performance.now() - start) / 1000).toFixed(1)}s: ${info.count} rows × ${info.dim} dims in ${output}, ` +
            `${info.ann.type} search, recall@10 ${info.recall_at_10.toFixed(3)}, partitions ${info.partitions.join(', ')}\n`,
        );
        if (info.ann.type !== 'flat' && info.recall_at_10 < TARGET_RECALL) {
          const settings = info.ann.type === 'ivf_pq' ? `refine ${info.ann.refine_factor}` : `ef ${info.ann.ef}`;
          process.stderr.write(
            `clipstream: warning: on these embeddings ${info.ann.type} reaches recall@10 ${info.recall_at_10.toFixed(3)} at best ` +
              `(nprobes ${info.ann.nprobes}, ${settings}): searches will miss neighbours\n` +
              '  Rebuild with --index-type flat for exact search (slower: a full scan per query).\n',
          );
        }
      },
    );
  return command.addCommand(indexInfoCommand());
}
