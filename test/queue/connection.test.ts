import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectQueue, displayUrl, parseQueueUrl } from '../../src/queue/connection.js';
import { startRedis, type RedisServer } from '../helpers/services.js';

describe('--queue URLs', () => {
  it('redis://[user:password@]HOST:PORT/DB → connection options', () => {
    expect(parseQueueUrl('redis://10.0.0.5:6380/3')).toMatchObject({ host: '10.0.0.5', port: 6380, db: 3 });
    expect(parseQueueUrl('redis://cache.internal')).toMatchObject({ host: 'cache.internal', port: 6379, db: 0 });
    expect(parseQueueUrl('redis://:s%40cret@h:1/0')).toMatchObject({ password: 's@cret' });
    expect(parseQueueUrl('redis://me:pw@h:1/0')).toMatchObject({ username: 'me', password: 'pw' });
    expect(parseQueueUrl('rediss://h:6379/0').tls).toEqual({});
    expect(parseQueueUrl('redis://[::1]:7000/0')).toMatchObject({ host: '::1', port: 7000 });
  });

  it.each([
    ['http://h:6379', /scheme http:/],
    ['redis-server:6379', /scheme redis-server:/],
    ['not a url', /not a URL/],
    ['redis://h:6379/db1', /database "db1" is not a number/],
  ])('refuses %s naming the flag and the form', (value, why) => {
    expect(() => parseQueueUrl(value)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => parseQueueUrl(value)).toThrow(/Expected redis:\/\/HOST:PORT\/DB for --queue/);
    expect(() => parseQueueUrl(value)).toThrow(why);
  });

  it("messages never show the password, a malformed URL's included", () => {
    for (const bad of ['redis://:hunter2@h:6379/db1', 'http://me:hunter2@h:6379/0', 'redis://:hun@ter2@h:1/x'])
      expect(() => parseQueueUrl(bad)).toThrow(
        expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
      );
    expect(() => parseQueueUrl('redis://:hun@ter2@h:1/x')).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('ter2') }),
    );
    expect(displayUrl('redis://:hunter2@h:6379/0')).toBe('redis://:***@h:6379/0');
    expect(displayUrl('redis://me:hunter2@h:6379/0')).toBe('redis://me:***@h:6379/0');
    expect(displayUrl('redis://h:6379/0')).toBe('redis://h:6379/0');
  });
});

describe('a Redis with a password', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis({ password: 'hunter2' });
  }, 600_000);
  afterAll(() => redis?.stop());

  it('a database this Redis does not have is refused (ioredis would quietly stay on database 0)', async () => {
    const err = await connectQueue(`redis://:hunter2@127.0.0.1:${redis.port}/42`).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string; hint: string },
    );
    expect(err?.code).toBe('INVALID_OPTION');
    expect(err?.message).toMatch(/has no database 42/);
    expect(err?.message).not.toContain('hunter2');
    expect(err?.hint).toMatch(/0–15/);
  });

  it('connects with it; without it (or a wrong one) is a clear error that hides it', async () => {
    const ok = await connectQueue(`redis://:hunter2@127.0.0.1:${redis.port}/0`);
    expect(await ok.ping()).toBe('PONG');
    ok.disconnect();
    for (const url of [`redis://127.0.0.1:${redis.port}/0`, `redis://:wrong@127.0.0.1:${redis.port}/0`]) {
      const err = await connectQueue(url).then(
        () => undefined,
        (e: unknown) => e as Error & { code: string; hint: string },
      );
      expect(err?.code).toBe('QUEUE_UNAVAILABLE');
      expect(err?.message).toMatch(/NOAUTH|WRONGPASS/);
      expect(err?.message).not.toMatch(/wrong@/);
      expect(err?.hint).toMatch(/redis:\/\/:PASSWORD@HOST:PORT\/DB/);
    }
  });
});
