import { useState } from 'preact/hooks';
import { describeError, postJson, type PlanAnswer, type ServerInfo, type StartAnswer } from './api';
import { ENCODE_FORMATS, RESIZE_MODES, specObject, specYaml, type DraftQuery, type DraftSpec } from './spec';

interface Props {
  info: ServerInfo;
  draft: DraftSpec;
  setDraft: (d: DraftSpec) => void;
}

/**
 * The spec being built: its queries (edited in place), image settings, the YAML `clipstream plan` reads (download,
 * copy), what the plan would be (without downloading anything), and a stream started from it when the server
 * allows that.
 */
export function SpecBuilder({ info, draft, setDraft }: Props) {
  const [plan, setPlan] = useState<PlanAnswer | null>(null);
  const [partitions, setPartitions] = useState(1);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const spec = specObject(draft, info);
  const yaml = specYaml(spec);

  async function run<T>(work: () => Promise<T>, then: (t: T) => void) {
    setBusy(true);
    setError('');
    try {
      then(await work());
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="spec-title">
      <h2 id="spec-title">Spec</h2>
      {draft.queries.length === 0 && (
        <p class="note">No query yet: search in the explorer, set the threshold, and "Add to spec".</p>
      )}
      {draft.queries.length > 0 && <QueriesTable draft={draft} setDraft={setDraft} />}
      <Settings draft={draft} setDraft={setDraft} />
      <h3>spec.yaml</h3>
      <pre class="yaml" aria-label="spec.yaml">
        {yaml}
      </pre>
      <div class="row">
        <a class="button" download="spec.yaml" href={`data:application/yaml;charset=utf-8,${encodeURIComponent(yaml)}`}>
          Download spec.yaml
        </a>
        <button type="button" onClick={() => void navigator.clipboard?.writeText(yaml)}>
          Copy
        </button>
      </div>
      <form
        class="row"
        onSubmit={(e) => (
          e.preventDefault(),
          void run(() => postJson<PlanAnswer>('/api/plan', { spec, partitions }), setPlan)
        )}
      >
        <label>
          Partitions (world_size × num_workers)
          <input
            type="number"
            min={1}
            value={partitions}
            onInput={(e) => setPartitions(Math.max(1, Number(e.currentTarget.value) || 1))}
          />
        </label>
        <button type="submit" disabled={busy || draft.queries.length === 0}>
          Plan
        </button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {plan && <PlanTable plan={plan} />}
      {info.allow_new_streams && draft.queries.length > 0 && (
        <StartStream spec={spec} partitions={partitions} busy={busy} run={run} />
      )}
    </section>
  );
}

/** The spec's queries, edited in place. */
function QueriesTable({ draft, setDraft }: { draft: DraftSpec; setDraft: (d: DraftSpec) => void }) {
  const setQuery = (i: number, q: Partial<DraftQuery>) =>
    setDraft({ ...draft, queries: draft.queries.map((x, j) => (j === i ? { ...x, ...q } : x)) });
  return (
    <table class="queries">
      <caption>Queries of index {draft.index}</caption>
      <thead>
        <tr>
          <th scope="col">name</th>
          <th scope="col">query</th>
          <th scope="col">count</th>
          <th scope="col">min_similarity</th>
          <th scope="col">weight</th>
          <th scope="col">where</th>
          <th scope="col">
            <span class="sr">remove</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {draft.queries.map((q, i) => (
          <tr key={i}>
            <td>
              <input
                aria-label={`name of query ${i + 1}`}
                value={q.name}
                onInput={(e) => setQuery(i, { name: e.currentTarget.value })}
              />
            </td>
            <td>{'text' in q.source ? `text: ${q.source.text}` : `embedding (${q.source.embedding.length} values)`}</td>
            <td>
              <input
                aria-label={`count of ${q.name}`}
                type="number"
                min={1}
                value={q.count}
                onInput={(e) => setQuery(i, { count: Math.max(1, Number(e.currentTarget.value) || 1) })}
              />
            </td>
            <td>
              <input
                aria-label={`min_similarity of ${q.name}`}
                type="number"
                min={-1}
                max={1}
                step={0.001}
                value={q.min_similarity}
                onInput={(e) => setQuery(i, { min_similarity: Number(e.currentTarget.value) })}
              />
            </td>
            <td>
              <input
                aria-label={`weight of ${q.name}`}
                type="number"
                min={0}
                step="any"
                value={q.weight ?? ''}
                placeholder="auto"
                onInput={(e) =>
                  setQuery(i, { weight: e.currentTarget.value ? Number(e.currentTarget.value) : undefined })
                }
              />
            </td>
            <td>
              <input
                aria-label={`where of ${q.name}`}
                value={q.where ?? ''}
                onInput={(e) => setQuery(i, { where: e.currentTarget.value || undefined })}
              />
            </td>
            <td>
              <button
                type="button"
                aria-label={`remove ${q.name}`}
                onClick={() => setDraft({ ...draft, queries: draft.queries.filter((_, j) => j !== i) })}
              >
                ✕
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Image size, resize mode, format; near-duplicates; private networks. */
function Settings({ draft, setDraft }: { draft: DraftSpec; setDraft: (d: DraftSpec) => void }) {
  return (
    <fieldset class="row">
      <legend>Images and dedup</legend>
      <label>
        Image size
        <input
          type="number"
          min={1}
          max={16384}
          value={draft.image.size}
          onInput={(e) =>
            setDraft({ ...draft, image: { ...draft.image, size: Math.max(1, Number(e.currentTarget.value) || 1) } })
          }
        />
      </label>
      <label>
        Resize mode
        <select
          value={draft.image.resize_mode}
          onChange={(e) => setDraft({ ...draft, image: { ...draft.image, resize_mode: e.currentTarget.value } })}
        >
          {RESIZE_MODES.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
      </label>
      <label>
        Format
        <select
          value={draft.image.encode_format}
          onChange={(e) => setDraft({ ...draft, image: { ...draft.image, encode_format: e.currentTarget.value } })}
        >
          {ENCODE_FORMATS.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
      </label>
      <label class="check">
        <input
          type="checkbox"
          checked={draft.nearDuplicate}
          onChange={(e) => setDraft({ ...draft, nearDuplicate: e.currentTarget.checked })}
        />
        Drop near-duplicates (0.94)
      </label>
      <label class="check">
        <input
          type="checkbox"
          checked={draft.allowPrivateNetworks}
          onChange={(e) => setDraft({ ...draft, allowPrivateNetworks: e.currentTarget.checked })}
        />
        Allow private networks
      </label>
    </fieldset>
  );
}

function PlanTable({ plan }: { plan: PlanAnswer }) {
  const overlap = new Map((plan.overlap ?? []).map((o) => [o.name, o]));
  return (
    <table class="plan" aria-label="plan">
      <caption>
        What <code>clipstream plan</code> says (plan {plan.id}, P = {plan.partitions})
      </caption>
      <thead>
        <tr>
          <th scope="col">query</th>
          <th scope="col">requested</th>
          <th scope="col">available</th>
          <th scope="col">planned</th>
          <th scope="col">delivered</th>
          <th scope="col">per partition</th>
          <th scope="col">shared with other queries</th>
        </tr>
      </thead>
      <tbody>
        {plan.queries.map((q) => {
          const o = overlap.get(q.name);
          return (
            <tr key={q.name} data-query={q.name}>
              <th scope="row">{q.name}</th>
              <td data-field="requested">{q.requested}</td>
              <td data-field="available">{`${q.available}${q.available_more ? '+' : ''}`}</td>
              <td data-field="planned">{q.planned}</td>
              <td data-field="delivered">{q.delivered}</td>
              <td data-field="quota">{q.quota}</td>
              <td>
                {o && o.shared > 0
                  ? `${o.shared} of ${o.rows}${o.rows_more ? '+' : ''} (${Object.entries(o.with)
                      .map(([n, c]) => `${n} ${c}`)
                      .join(', ')})`
                  : 'none'}
              </td>
            </tr>
          );
        })}
      </tbody>
      <tfoot>
        <tr>
          <td colSpan={7}>
            total: {plan.total} samples, {plan.per_partition} per partition
            {plan.warnings.map((w) => (
              <p class="warning">{w}</p>
            ))}
          </td>
        </tr>
      </tfoot>
    </table>
  );
}

function StartStream({
  spec,
  partitions,
  busy,
  run,
}: {
  spec: Record<string, unknown>;
  partitions: number;
  busy: boolean;
  run: <T>(w: () => Promise<T>, then: (t: T) => void) => Promise<void>;
}) {
  const [name, setName] = useState('mine');
  const [started, setStarted] = useState<StartAnswer | null>(null);
  return (
    <div class="start">
      <form
        class="row"
        onSubmit={(e) => (
          e.preventDefault(),
          void run(() => postJson<StartAnswer>('/api/streams', { name, spec, partitions }), setStarted)
        )}
      >
        <label>
          Stream name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          Start stream
        </button>
      </form>
      {started && (
        <div aria-label="stream started">
          <p>
            Stream <strong>{started.name}</strong> is served at <code class="url">{started.url}</code> — watch it on the{' '}
            <a href="#dashboard">dashboard</a>.
          </p>
          <pre class="python" aria-label="python">
            {started.python}
          </pre>
        </div>
      )}
    </div>
  );
}
