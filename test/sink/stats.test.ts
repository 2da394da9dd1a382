import { describe, expect, it } from 'vitest';
import { CappedCounter, StatsCollector } from '../../src/sink/index.js';
import { failedRecord, successRecord } from './helpers.js';

describe('StatsCollector', () => {
  it('counts statuses, error messages and reasons with img2dataset field names', () => {
    let t = 1_700_000_000_000;
    const stats = new StatsCollector({ now: () => t });
    stats.add(successRecord('000000000'));
    stats.add(successRecord('000000001'));
    stats.add(failedRecord('000000002', 'failed_to_download', 'http_404', 'HTTP Error 404: Not Found'));
    stats.add(failedRecord('000000003', 'failed_to_download', 'http_404', 'HTTP Error 404: Not Found'));
    stats.add(failedRecord('000000004', 'failed_to_download', 'timeout', 'timed out'));
    stats.add(failedRecord('000000005', 'failed_to_resize', 'too_small', 'image too small'));
    t += 2500;
    expect(stats.finish()).toEqual({
      count: 6,
      successes: 2,
      failed_to_download: 3,
      failed_to_resize: 1,
      duration: 2.5,
      start_time: 1_700_000_000,
      end_time: 1_700_000_002.5,
      status_dict: { success: 2, 'HTTP Error 404: Not Found': 2, 'timed out': 1, 'image too small': 1 },
      reason_dict: { http_404: 2, timeout: 1, too_small: 1 },
    });
  });

  it('falls back to the status when a failure has no error message, and skips missing reasons', () => {
    const stats = new StatsCollector();
    const record = failedRecord('000000000');
    record.meta.error_message = null;
    record.meta.reason = null;
    stats.add(record);
    const result = stats.finish();
    expect(result.status_dict).toEqual({ failed_to_download: 1 });
    expect(result.reason_dict).toEqual({});
    expect(result.duration).toBeGreaterThanOrEqual(0);
  });

  it('caps status_dict and reason_dict: when full, a new key keeps the most common half', () => {
    const stats = new StatsCollector({ cap: 4 });
    const fail = (i: number, message: string) =>
      stats.add(failedRecord(String(i).padStart(9, '0'), 'failed_to_download', `r_${message}`, message));
    // counts: a=3, b=1, c=2, d=1 (4 keys = cap)
    let i = 0;
    for (const m of ['a', 'a', 'a', 'b', 'c', 'c', 'd']) fail(i++, m);
    fail(i, 'e'); // full: keep the 2 most common (a, c), then add e
    const result = stats.finish();
    expect(result.status_dict).toEqual({ a: 3, c: 2, e: 1 });
    expect(result.reason_dict).toEqual({ r_a: 3, r_c: 2, r_e: 1 });
    expect(result.count).toBe(8);
    expect(result.failed_to_download).toBe(8);
  });
});

describe('CappedCounter', () => {
  it('never exceeds its cap, keeps ties in first-seen order, and does not trim for known keys', () => {
    const counter = new CappedCounter(10);
    for (let k = 0; k < 10; k++) counter.increment(`k${k}`, k === 7 ? 5 : 1);
    counter.increment('k3'); // known key: no trim
    expect(counter.size).toBe(10);
    counter.increment('new');
    // kept: k7 (5), k3 (2), then k0 k1 k2 (1, first seen) = 5, plus new
    expect(counter.toJSON()).toEqual({ k7: 5, k3: 2, k0: 1, k1: 1, k2: 1, new: 1 });
    for (let k = 0; k < 1000; k++) {
      counter.increment(`m${k}`);
      expect(counter.size).toBeLessThanOrEqual(10);
    }
    expect(() => new CappedCounter(1)).toThrow(RangeError);
  });
});
