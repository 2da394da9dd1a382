import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { describeError, getJson, type ServerInfo } from './api';
import { Dashboard } from './dashboard';
import { Explorer } from './explorer';
import { emptySpec, type DraftQuery, type DraftSpec } from './spec';
import { SpecBuilder } from './spec-builder';
import './style.css';

type Tab = 'explorer' | 'spec' | 'dashboard';
const TABS: { id: Tab; label: string }[] = [
  { id: 'explorer', label: 'Explorer' },
  { id: 'spec', label: 'Spec' },
  { id: 'dashboard', label: 'Dashboard' },
];

// Opened as /?token=…: the server has set its cookie, so the token leaves the address bar (and the history).
if (new URLSearchParams(location.search).has('token'))
  history.replaceState(null, '', location.pathname + location.hash);

const tabOf = (hash: string): Tab | undefined => TABS.find((t) => `#${t.id}` === hash)?.id;

function App() {
  const [info, setInfo] = useState<ServerInfo | null>(null);
  const [error, setError] = useState('');
  const [tab, setTab] = useState<Tab>(tabOf(location.hash) ?? 'explorer');
  const [index, setIndex] = useState('');
  const [draft, setDraft] = useState<DraftSpec>(emptySpec(''));

  useEffect(() => {
    getJson<ServerInfo>('/api/info').then(
      (i) => {
        setInfo(i);
        const first = i.indices[0]?.name ?? '';
        setIndex(first);
        setDraft(emptySpec(first));
        if (!i.indices.length && !tabOf(location.hash)) setTab('dashboard');
      },
      (err: unknown) => setError(describeError(err)),
    );
    const onHash = () => setTab(tabOf(location.hash) ?? 'explorer');
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  // A spec has one index: the first query added from another index starts a new spec (after asking).
  const add = (q: DraftQuery) => {
    if (draft.queries.length > 0 && draft.index !== index) {
      if (
        !confirm(
          `The spec holds ${draft.queries.length} queries of index ${draft.index}; a spec has one index. Start a new spec for ${index}?`,
        )
      )
        return;
      setDraft({ ...draft, index, queries: [q] });
      return;
    }
    setDraft({ ...draft, index, queries: [...draft.queries, q] });
  };
  const tabs = info && info.indices.length === 0 ? TABS.filter((t) => t.id === 'dashboard') : TABS;
  return (
    <>
      <header>
        <h1>clipstream</h1>
        <nav aria-label="sections">
          {tabs.map((t) => (
            <a href={`#${t.id}`} aria-current={tab === t.id ? 'page' : undefined}>
              {t.label}
              {t.id === 'spec' && draft.queries.length > 0 ? ` (${draft.queries.length})` : ''}
            </a>
          ))}
        </nav>
      </header>
      <main>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {info && tab === 'explorer' && index && (
          <Explorer
            info={info}
            index={index}
            setIndex={setIndex}
            taken={draft.queries.map((q) => q.name)}
            onAdd={add}
          />
        )}
        {info && tab === 'spec' && <SpecBuilder info={info} draft={draft} setDraft={setDraft} />}
        {tab === 'dashboard' && <Dashboard />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
