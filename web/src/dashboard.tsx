import { useEffect, useState } from 'preact/hooks';
import type { EventsSnapshot as Snapshot, RatePoint } from '../../src/server/wire';
import { RateChart } from './chart';
import { Thumb } from './thumb';

type Job = Snapshot['jobs'][number];

const MB = (b: number) => (b < 1024 * 1024 ? `${(b / 1024).toFixed(1)} KB` : `${(b / 1024 / 1024).toFixed(1)} MB`);

/** Every served stream (and a running download), live from /api/events: one snapshot a second. */
export function Dashboard() {
  const [snapshot, setSnapshot] = useState<Snapshot | null>(null);
  const [history, setHistory] = useState<Record<string, RatePoint[]>>({});
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    const events = new EventSource('/api/events');
    events.addEventListener('open', () => setConnected(true));
    events.addEventListener('error', () => setConnected(false));
    events.addEventListener('history', (e) =>
      setHistory(JSON.parse((e as MessageEvent<string>).data) as Record<string, RatePoint[]>),
    );
    events.addEventListener('snapshot', (e) => {
      const s = JSON.parse((e as MessageEvent<string>).data) as Snapshot;
      setSnapshot(s);
      setHistory((h) => {
        const next = { ...h };
        for (const job of s.jobs) next[job.name] = [...(h[job.name] ?? []), job.rate].slice(-90);
        return next;
      });
    });
    return () => events.close();
  }, []);
  return (
    <section aria-labelledby="dashboard-title">
      <h2 id="dashboard-title">Dashboard</h2>
      <p class="note" aria-live="polite">
        {connected ? 'live' : 'connecting…'}
        {snapshot && (
          <>
            {' '}
            · server memory (RSS) <strong data-field="rss">{MB(snapshot.rss)}</strong>
          </>
        )}
      </p>
      {snapshot?.jobs.length === 0 && (
        <p class="note">
          Nothing is streaming: start a stream from the spec, or serve one with <code>--spec NAME=SPEC</code>.
        </p>
      )}
      {snapshot?.jobs.map((job) => (
        <JobPanel key={job.name} job={job} points={history[job.name] ?? []} />
      ))}
    </section>
  );
}

/** A job's counters: rate, attempts, failures, repeats, bytes, cache hits, partitions open, shards. */
function Counters({ job }: { job: Job }) {
  const cache =
    job.cache_hits !== null && job.cache_hits + (job.cache_misses ?? 0) > 0
      ? `${job.cache_hits} of ${job.cache_hits + (job.cache_misses ?? 0)}`
      : '–';
  return (
    <dl class="counters">
      <div>
        <dt>samples/s</dt>
        <dd>{job.rate.samples_per_second}</dd>
      </div>
      <div>
        <dt>attempts</dt>
        <dd data-field="attempts">{job.attempts}</dd>
      </div>
      <div>
        <dt>failures</dt>
        <dd data-field="failures">{job.failures}</dd>
      </div>
      {job.repeats !== null && (
        <div>
          <dt>repeats</dt>
          <dd data-field="repeats">{job.repeats}</dd>
        </div>
      )}
      {job.bytes !== null && (
        <div>
          <dt>bytes</dt>
          <dd>{MB(job.bytes)}</dd>
        </div>
      )}
      <div>
        <dt>cache hits</dt>
        <dd>{cache}</dd>
      </div>
      {job.active_partitions !== undefined && (
        <div>
          <dt>partitions open</dt>
          <dd>{job.active_partitions}</dd>
        </div>
      )}
      {job.shards && (
        <div>
          <dt>shards</dt>
          <dd>
            {job.shards.done} done, {job.shards.skipped} skipped
            {job.shards.active !== undefined &&
              `, ${job.shards.active} active, ${job.shards.waiting ?? 0} waiting, ${job.shards.failed ?? 0} failed`}
          </dd>
        </div>
      )}
    </dl>
  );
}

function JobPanel({ job, points }: { job: Job; points: RatePoint[] }) {
  return (
    <article class="job" aria-label={`${job.kind} ${job.name}`} data-job={job.name}>
      <h3>
        {job.kind} <strong>{job.name}</strong>
        {job.state ? ` (${job.state})` : ''}: <span data-field="delivered">{job.delivered}</span>
        {job.target !== null && (
          <>
            {' '}
            / <span data-field="target">{job.target}</span>
          </>
        )}{' '}
        samples
      </h3>
      <Counters job={job} />
      <div class="row top">
        {job.progress && <QueryTable progress={job.progress} />}
        <Reasons reasons={job.reasons} />
      </div>
      <RateChart points={points} label={job.name} />
      {job.progress && job.progress.recent.length > 0 && (
        <>
          <h4>Latest samples</h4>
          <ul class="strip" aria-label={`latest samples of ${job.name}`}>
            {[...job.progress.recent].reverse().map((s) => (
              <li key={s.key} class="recent">
                <Thumb
                  src={`/streams/${encodeURIComponent(job.name)}/recent/${s.key}.${s.format}`}
                  alt={s.caption ?? s.key}
                />
                <span class="label">
                  {s.query}
                  {s.repeat ? ' (repeat)' : ''}
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
    </article>
  );
}

function QueryTable({ progress }: { progress: NonNullable<Job['progress']> }) {
  return (
    <table class="progress" aria-label="delivered per query">
      <caption>
        P = {progress.partitions} ({progress.partitions_seen} read so far)
      </caption>
      <thead>
        <tr>
          <th scope="col">query</th>
          <th scope="col">delivered / target</th>
          {progress.per_partition.map((x) => (
            <th scope="col">p{x.p}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {progress.queries.map((q, qi) => (
          <tr key={q.name} data-query={q.name}>
            <th scope="row">{q.name}</th>
            <td>
              <progress max={q.target} value={q.delivered} aria-label={`${q.name}: ${q.delivered} of ${q.target}`} />{' '}
              <span data-field="delivered">{q.delivered}</span> / <span data-field="target">{q.target}</span>
            </td>
            {progress.per_partition.map((x) => (
              <td data-partition={x.p}>
                {x.delivered[qi] ?? 0} / {q.quota}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Reasons({ reasons }: { reasons: Record<string, number> }) {
  const entries = Object.entries(reasons);
  return (
    <table class="reasons" aria-label="failures by reason">
      <caption>Failures by reason</caption>
      <tbody>
        {entries.length === 0 && (
          <tr>
            <td>none</td>
          </tr>
        )}
        {entries.map(([reason, n]) => (
          <tr key={reason} data-reason={reason}>
            <th scope="row">{reason}</th>
            <td>{n}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
