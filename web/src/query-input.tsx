import { useEffect, useState } from 'preact/hooks';
import type { Query } from './api';

/** A query and how to name it in a spec. */
export interface AskedQuery {
  query: Query;
  label: string;
}

const readAsDataUrl = (file: Blob) =>
  new Promise<string>((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });

/**
 * What to search by: a text (when the server has a model), an image (file, paste anywhere on the page, or drop), or
 * an image URL the server downloads. "More like this" comes from a result's details instead.
 */
export function QueryInput({
  hasModel,
  busy,
  onAsk,
}: {
  hasModel: boolean;
  busy: boolean;
  onAsk: (q: AskedQuery) => void;
}) {
  const [text, setText] = useState('');

  const askImage = async (file: File | undefined | null) => {
    if (!file || !file.type.startsWith('image/')) return;
    onAsk({ query: { image: await readAsDataUrl(file) }, label: file.name.replace(/\.[^.]*$/, '') || 'image' });
  };

  useEffect(() => {
    if (!hasModel) return;
    const onPaste = (e: ClipboardEvent) => {
      const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
      if (file) {
        e.preventDefault();
        void askImage(file);
      }
    };
    document.addEventListener('paste', onPaste);
    return () => document.removeEventListener('paste', onPaste);
  }, [hasModel]);

  if (!hasModel) {
    return (
      <p class="note">
        This server has no model (<code>--model</code>): query by a result's "more like this", or restart it with a CLIP
        model to search by text and image.
      </p>
    );
  }
  return (
    <div class="query-input">
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim()) onAsk({ query: { text: text.trim() }, label: text.trim() });
        }}
      >
        <label class="grow">
          Text query
          <input
            type="search"
            name="text"
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            placeholder="a photo of a cat"
          />
        </label>
        <button type="submit" disabled={busy || !text.trim()}>
          Search
        </button>
      </form>
      <div class="row">
        <UrlForm busy={busy} onAsk={onAsk} />
        <ImageDrop onImage={(file) => void askImage(file)} />
      </div>
    </div>
  );
}

/** An image URL the server downloads (through its SSRF guard). */
function UrlForm({ busy, onAsk }: { busy: boolean; onAsk: (q: AskedQuery) => void }) {
  const [url, setUrl] = useState('');
  return (
    <form
      class="row grow"
      onSubmit={(e) => {
        e.preventDefault();
        if (url.trim())
          onAsk({
            query: { image_url: url.trim() },
            label:
              url
                .trim()
                .split('/')
                .pop()
                ?.replace(/\.[^.]*$/, '') || 'image',
          });
      }}
    >
      <label class="grow">
        Image URL
        <input
          type="url"
          value={url}
          onInput={(e) => setUrl(e.currentTarget.value)}
          placeholder="https://…/picture.jpg"
        />
      </label>
      <button type="submit" disabled={busy || !url.trim()}>
        Search by URL
      </button>
    </form>
  );
}

/** A file input that also takes an image dropped on it. */
function ImageDrop({ onImage }: { onImage: (file: File | undefined | null) => void }) {
  const [dragging, setDragging] = useState(false);
  return (
    <label
      class={`drop ${dragging ? 'dragging' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        onImage(e.dataTransfer?.files[0]);
      }}
    >
      Query image (choose, paste or drop)
      <input type="file" accept="image/*" onChange={(e) => onImage(e.currentTarget.files?.[0])} />
    </label>
  );
}
