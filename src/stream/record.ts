import type { SampleRecord } from '../core/types.js';
import type { StreamSample } from './engine.js';

/** A streamed sample as a sink record; `withState` adds the `.state` member (HTTP and stdout streams). */
export function toRecord(sample: StreamSample, withState: boolean): SampleRecord {
  return {
    key: sample.key,
    status: 'success',
    meta: sample.json,
    image: { data: sample.image, format: sample.format },
    caption: sample.caption ?? '',
    extra: withState ? [{ ext: 'state', data: Buffer.from(JSON.stringify(sample.state)) }] : undefined,
  };
}
