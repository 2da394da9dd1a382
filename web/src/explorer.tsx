import { useEffect, useRef, useState } from 'preact/hooks';
import {
  describeError,
  postJson,
  thumbUrl,
  type Row,
  type SearchAnswer,
  type ServerInfo,
  type ThresholdAnswer,
} from './api';
import { QueryInput, type AskedQuery } from './query-input';
import type { DraftQuery } from './spec';
import { queryName } from './spec';
import { Thumb } from './thumb';

interface Props {
  info: ServerInfo;
  index: string;
  setIndex: (name: string) => void;
  taken: string[];
  onAdd: (q: DraftQuery) => void;
}

/** The last search: what was asked, and the answer (its vector is reused for thresholds and the spec). */
interface Searched {
  asked: AskedQuery;
  answer: SearchAnswer;
  where: string;
  nearDuplicate: boolean;
}

const fmt = (s: number) => s.toFixed(3);

/**
 * clip-front's job and more: search an index, see the thumbnails best first, move the threshold and see how many
 * rows lie above it and the rows at its edge, open a result's metadata, search "more like this", add the query to
 * the spec.
 */
export function Explorer({ info, index, setIndex, taken, onAdd }: Props) {
  const [k, setK] = useState(60);
  const [where, setWhere] = useState('');
  const [nearDuplicate, setNearDuplicate] = useState(false);
  const [searched, setSearched] = useState<Searched | null>(null);
  const [threshold, setThreshold] = useState(0);
  const [edge, setEdge] = useState<ThresholdAnswer | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState<Row | null>(null);

  // Results, thresholds and thumbnails belong to the index they came from.
  useEffect(() => {
    setSearched(null);
    setEdge(null);
    setOpen(null);
  }, [index]);

  async function ask(asked: AskedQuery) {
    setBusy(true);
    setError('');
    try {
      const answer = await postJson<SearchAnswer>('/api/search', {
        index,
        query: asked.query,
        k,
        ...(where.trim() ? { where: where.trim() } : {}),
        near_duplicate: nearDuplicate,
      });
      setSearched({ asked, answer, where: where.trim(), nearDuplicate });
      const lowest = answer.results.at(-1)?.similarity ?? 0;
      setThreshold(Math.floor(lowest * 1000) / 1000);
      setOpen(null);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  // The count and the edge follow the slider, a request at most every 150 ms while it moves.
  useEffect(() => {
    if (!searched) return;
    let live = true;
    const timer = setTimeout(() => {
      const body = {
        index,
        query: { embedding: searched.answer.vector },
        min_similarity: threshold,
        edge: 6,
        ...(searched.where ? { where: searched.where } : {}),
        near_duplicate: searched.nearDuplicate,
      };
      postJson<ThresholdAnswer>('/api/threshold', body).then(
        (a) => live && setEdge(a),
        (err: unknown) => live && setError(describeError(err)),
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [searched, threshold]);

  return (
    <section aria-labelledby="explorer-title">
      <h2 id="explorer-title">Explorer</h2>
      <SearchOptions
        info={info}
        index={index}
        setIndex={setIndex}
        k={k}
        setK={setK}
        where={where}
        setWhere={setWhere}
        nearDuplicate={nearDuplicate}
        setNearDuplicate={setNearDuplicate}
      />
      <QueryInput hasModel={info.model !== null} busy={busy} onAsk={(q) => void ask(q)} />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {searched && (
        <Results
          searched={searched}
          threshold={threshold}
          setThreshold={setThreshold}
          edge={edge}
          index={index}
          taken={taken}
          onAdd={onAdd}
          onOpen={setOpen}
        />
      )}
      {open && (
        <Details
          index={index}
          row={open}
          onClose={() => setOpen(null)}
          onMoreLikeThis={(row) => void ask({ query: { like: row.id }, label: `like-${row.id}` })}
        />
      )}
    </section>
  );
}

interface SearchOptionsProps {
  info: ServerInfo;
  index: string;
  setIndex: (name: string) => void;
  k: number;
  setK: (k: number) => void;
  where: string;
  setWhere: (w: string) => void;
  nearDuplicate: boolean;
  setNearDuplicate: (on: boolean) => void;
}

/** Which index, how many results, the where predicate, near-duplicates. */
function SearchOptions({
  info,
  index,
  setIndex,
  k,
  setK,
  where,
  setWhere,
  nearDuplicate,
  setNearDuplicate,
}: SearchOptionsProps) {
  return (
    <div class="row">
      <label>
        Index
        <select value={index} onChange={(e) => setIndex(e.currentTarget.value)}>
          {info.indices.map((i) => (
            <option value={i.name}>{`${i.name} (${i.count.toLocaleString('en')} rows)`}</option>
          ))}
        </select>
      </label>
      <label>
        Results
        <input
          type="number"
          min={1}
          max={info.limits.results}
          value={k}
          onInput={(e) => setK(Math.max(1, Number(e.currentTarget.value) || 1))}
        />
      </label>
      <label class="grow">
        Where (SQL on metadata)
        <input
          type="text"
          value={where}
          onInput={(e) => setWhere(e.currentTarget.value)}
          placeholder={Object.keys(info.indices.find((i) => i.name === index)?.columns ?? {})
            .slice(0, 3)
            .join(', ')}
        />
      </label>
      <label class="check">
        <input type="checkbox" checked={nearDuplicate} onChange={(e) => setNearDuplicate(e.currentTarget.checked)} />
        Drop near-duplicates
      </label>
    </div>
  );
}

interface ResultsProps {
  searched: Searched;
  threshold: number;
  setThreshold: (t: number) => void;
  edge: ThresholdAnswer | null;
  index: string;
  taken: string[];
  onAdd: (q: DraftQuery) => void;
  onOpen: (r: Row) => void;
}

/** The threshold with its count and edge, "add to spec", and the results at or above the threshold. */
function Results({ searched, threshold, setThreshold, edge, index, taken, onAdd, onOpen }: ResultsProps) {
  const shown = searched.answer.results.filter((r) => r.similarity >= threshold);
  const lowest = searched.answer.results.at(-1)?.similarity ?? 0;
  const sliderMin = Math.max(-1, Math.floor((lowest - 0.1) * 100) / 100);
  return (
    <>
      <Threshold value={threshold} min={sliderMin} onChange={setThreshold} edge={edge} index={index} onOpen={onOpen} />
      <AddToSpec searched={searched} threshold={threshold} count={edge?.count} taken={taken} onAdd={onAdd} />
      <h3>
        {shown.length} of the best {searched.answer.results.length} results at or above {fmt(threshold)}
      </h3>
      <ul class="grid" aria-label="results">
        {shown.map((r) => (
          <li key={r.id}>
            <Tile index={index} row={r} onOpen={onOpen} />
          </li>
        ))}
      </ul>
    </>
  );
}

function Tile({ index, row, onOpen }: { index: string; row: Row; onOpen: (r: Row) => void }) {
  return (
    <button
      type="button"
      class="tile"
      data-id={row.id}
      data-similarity={row.similarity}
      onClick={() => onOpen(row)}
      aria-label={`row ${row.id}, similarity ${fmt(row.similarity)}: ${row.caption ?? ''}`}
    >
      <Thumb src={thumbUrl(index, row.id)} alt={String(row.caption ?? `row ${row.id}`)} />
      <span class="sim">{fmt(row.similarity)}</span>
      <span class="caption">{row.caption ?? ''}</span>
    </button>
  );
}

function Threshold({
  value,
  min,
  onChange,
  edge,
  index,
  onOpen,
}: {
  value: number;
  min: number;
  onChange: (v: number) => void;
  edge: ThresholdAnswer | null;
  index: string;
  onOpen: (r: Row) => void;
}) {
  const current = edge && Math.abs(edge.min_similarity - value) < 1e-9;
  return (
    <div class="threshold">
      <div class="row">
        <label class="grow">
          Minimum similarity
          <input
            type="range"
            min={min}
            max={1}
            step={0.001}
            value={value}
            onInput={(e) => onChange(Number(e.currentTarget.value))}
          />
        </label>
        <label>
          Threshold
          <input
            type="number"
            min={-1}
            max={1}
            step={0.001}
            value={value}
            onChange={(e) => onChange(Number(e.currentTarget.value))}
          />
        </label>
        <output
          class={`count ${current ? '' : 'stale'}`}
          aria-live="polite"
          data-count={edge ? `${edge.count}${edge.more ? '+' : ''}` : ''}
        >
          {edge
            ? `${edge.count.toLocaleString('en')}${edge.more ? '+' : ''} rows at or above ${fmt(edge.min_similarity)}`
            : '…'}
        </output>
      </div>
      {edge && !edge.more && (
        <div class="edges">
          <EdgeStrip title="Just above" rows={edge.above} index={index} onOpen={onOpen} />
          <EdgeStrip title="Just below" rows={edge.below} index={index} onOpen={onOpen} />
        </div>
      )}
      {edge?.more && (
        <p class="note">
          More than {edge.count.toLocaleString('en')} rows lie above it: the edge is beyond what one request reads.
          Raise the threshold or add a where.
        </p>
      )}
    </div>
  );
}

function EdgeStrip({
  title,
  rows,
  index,
  onOpen,
}: {
  title: string;
  rows: Row[];
  index: string;
  onOpen: (r: Row) => void;
}) {
  return (
    <div class="edge">
      <h4>{title}</h4>
      <ul class="strip" aria-label={title.toLowerCase()}>
        {rows.length === 0 && <li class="note">none</li>}
        {rows.map((r) => (
          <li key={r.id}>
            <Tile index={index} row={r} onOpen={onOpen} />
          </li>
        ))}
      </ul>
    </div>
  );
}

function AddToSpec({
  searched,
  threshold,
  count,
  taken,
  onAdd,
}: {
  searched: Searched;
  threshold: number;
  count: number | undefined;
  taken: string[];
  onAdd: (q: DraftQuery) => void;
}) {
  const [name, setName] = useState('');
  const [wanted, setWanted] = useState(100);
  const [weight, setWeight] = useState('');
  const suggested = queryName(searched.asked.label, taken);
  useEffect(() => setName(suggested), [searched]);
  useEffect(() => {
    if (count !== undefined) setWanted(Math.max(1, Math.min(count, 1000)));
  }, [searched, count === undefined]);
  const q = searched.asked.query;
  return (
    <form
      class="row add"
      aria-label="add to spec"
      onSubmit={(e) => {
        e.preventDefault();
        onAdd({
          name: name || suggested,
          source: 'text' in q ? { text: q.text } : { embedding: searched.answer.vector },
          count: wanted,
          min_similarity: threshold,
          ...(weight ? { weight: Number(weight) } : {}),
          ...(searched.where ? { where: searched.where } : {}),
        });
      }}
    >
      <label>
        Query name
        <input
          type="text"
          value={name}
          pattern="[A-Za-z0-9_\-]{1,64}"
          onInput={(e) => setName(e.currentTarget.value)}
        />
      </label>
      <label>
        Count
        <input
          type="number"
          min={1}
          value={wanted}
          onInput={(e) => setWanted(Math.max(1, Number(e.currentTarget.value) || 1))}
        />
      </label>
      <label>
        Weight
        <input
          type="number"
          min={0}
          step="any"
          value={weight}
          placeholder="auto"
          onInput={(e) => setWeight(e.currentTarget.value)}
        />
      </label>
      <button type="submit">Add to spec (≥ {fmt(threshold)})</button>
    </form>
  );
}

function Details({
  index,
  row,
  onClose,
  onMoreLikeThis,
}: {
  index: string;
  row: Row;
  onClose: () => void;
  onMoreLikeThis: (r: Row) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    dialog.current?.showModal();
  }, [row]);
  return (
    <dialog ref={dialog} class="details" aria-label={`row ${row.id}`} onClose={onClose}>
      <div class="row">
        <Thumb src={thumbUrl(index, row.id)} alt={String(row.caption ?? '')} />
        <table>
          <tbody>
            {Object.entries(row).map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>
                  {k === 'url' && typeof v === 'string' ? (
                    <a href={v} target="_blank" rel="noreferrer noopener">
                      {v}
                    </a>
                  ) : (
                    String(v)
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="row">
        <button type="button" onClick={() => onMoreLikeThis(row)}>
          More like this
        </button>
        <button type="button" onClick={() => dialog.current?.close()}>
          Close
        </button>
      </div>
    </dialog>
  );
}
