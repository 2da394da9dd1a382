/**
 * S3-compatible object storage (AWS, MinIO, R2, GCS's S3 API): `s3://bucket/key` URLs, one client per process
 * configured the standard AWS way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE and ~/.aws files,
 * AWS_REGION, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for another service), and the mapping of the SDK's errors onto
 * ClipstreamErrors that name the URL and say what to do. Reads go through `byte-source.ts`; whole-object writes,
 * listing and deletes are here.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { inputNotFound, invalidOption, isClipstreamError, storageUnavailable } from '../core/errors.js';

export interface S3Location {
  bucket: string;
  /** The key, or the key prefix of a "folder" (without a trailing slash). */
  key: string;
}

export function isS3Url(value: string): boolean {
  return /^s3:\/\//i.test(value);
}

/** `s3://bucket/a/b/` → { bucket, key: 'a/b' }. Refuses what is not a bucket name S3 accepts. */
export function parseS3Url(url: string): S3Location {
  const match = /^s3:\/\/([^/]*)\/?(.*)$/i.exec(url);
  const bucket = match?.[1] ?? '';
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw invalidOption(
      `Expected s3://BUCKET/PREFIX with a valid bucket name but received ${JSON.stringify(url)} (bucket names are 3–63 lower-case letters, digits, dots and hyphens)`,
    );
  }
  return { bucket, key: (match?.[2] ?? '').replace(/\/+$/, '') };
}

/** A child of an S3 "folder": `join(s3://b/out, 00000.tar)` → `s3://b/out/00000.tar`. */
export function s3Join(folderUrl: string, name: string): string {
  return folderUrl.replace(/\/+$/, '') + '/' + name;
}

/** `path.join` for a local path, `s3Join` for an `s3://` URL (path.join would fold its `//`). */
export function joinAt(base: string, ...parts: string[]): string {
  return isS3Url(base) ? parts.reduce(s3Join, base) : join(base, ...parts);
}

let shared: Promise<S3Client> | undefined;

/** The process's S3 client, made on first use from the AWS environment (see the module comment). */
export function s3Client(): Promise<S3Client> {
  shared ??= makeClient();
  return shared;
}

async function makeClient(): Promise<S3Client> {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  // Buckets under another endpoint (MinIO, moto, a gateway at an IP) are not DNS names: path-style addressing.
  const forcePathStyle =
    endpoint !== undefined || /^(1|true|yes)$/i.test(process.env.CLIPSTREAM_S3_FORCE_PATH_STYLE ?? '');
  // Bounded: an endpoint that does not answer fails in seconds (the SDK has no timeout of its own); a socket idle
  // for 2 minutes mid-transfer is a failure too (retried, maxAttempts).
  const base = {
    forcePathStyle,
    maxAttempts: 4,
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  };
  const client = new S3Client(base);
  try {
    await client.config.region();
    return client;
  } catch {
    // No region in the environment or ~/.aws/config: MinIO, R2 and moto accept any; AWS redirects us.
    client.destroy();
    return new S3Client({ ...base, region: 'us-east-1' });
  }
}

/** Maps an SDK error about `url` onto a ClipstreamError (missing bucket or key, credentials, endpoint). */
export function s3Error(err: unknown, url: string, doing: string): Error {
  if (isClipstreamError(err)) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const name = e?.name ?? '';
  const status = e?.$metadata?.httpStatusCode;
  const bucket = /^s3:\/\/([^/]*)/i.exec(url)?.[1] ?? '';
  if (name === 'NoSuchBucket' || (status === 404 && name === 'NotFound' && doing === 'check')) {
    return inputNotFound(`the bucket "${bucket}" of ${url} does not exist`, {
      hint: 'Create the bucket first, or check the URL and AWS_ENDPOINT_URL / AWS_REGION.',
      cause: err,
    });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    return inputNotFound(`no such object: ${url}`, { cause: err });
  }
  if (name === 'CredentialsProviderError' || /credential/i.test(e?.message ?? '')) {
    return storageUnavailable(`cannot ${doing} ${url}: no AWS credentials found (${e?.message ?? name})`, {
      hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with ~/.aws/credentials).',
      cause: err,
    });
  }
  if (name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || status === 403) {
    return inputNotFound(`cannot ${doing} ${url}: access denied (${name || `HTTP ${status}`})`, {
      hint: 'Check the credentials and the bucket policy (the key needs read, write, list and delete there).',
      cause: err,
    });
  }
  if (err instanceof S3ServiceException) {
    return storageUnavailable(`cannot ${doing} ${url}: ${name} (HTTP ${status ?? '?'}): ${e.message ?? ''}`, {
      cause: err,
    });
  }
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL ?? 'the AWS S3 endpoint';
  return storageUnavailable(`cannot ${doing} ${url}: ${e?.message ?? String(err)} (${e?.code ?? name})`, {
    hint: `Check that ${endpoint} is reachable (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL set it for MinIO, R2, GCS).`,
    cause: err,
  });
}

/** Throws a clear error when the bucket of `url` does not exist or cannot be reached: checked before work starts. */
export async function checkBucket(url: string): Promise<void> {
  const { bucket } = parseS3Url(url);
  const client = await s3Client();
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    throw s3Error(err, url, 'check');
  }
}

/** Size of an object, or undefined when there is none. */
export async function s3Size(url: string): Promise<number | undefined> {
  const { bucket, key } = parseS3Url(url);
  if (key === '') return undefined; // the bucket itself: a folder
  const client = await s3Client();
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength ?? 0;
  } catch (err) {
    const mapped = s3Error(err, url, 'read');
    // (not `/bucket/.test(message)`: the message names the URL, and s3://nosuchbucket/x holds the word.)
    if (isClipstreamError(mapped) && mapped.code === 'INPUT_NOT_FOUND' && mapped.message.startsWith('no such object')) {
      return undefined;
    }
    throw mapped;
  }
}

/** Reads `[offset, offset + into.length)` of an object into `into`. */
export async function s3ReadRange(url: string, offset: number, into: Uint8Array): Promise<void> {
  if (into.length === 0) return;
  const { bucket, key } = parseS3Url(url);
  const client = await s3Client();
  let got = 0;
  try {
    const res = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${offset}-${offset + into.length - 1}` }),
    );
    for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
      if (got + chunk.length > into.length) throw new Error(`sent more than the ${into.length} bytes asked for`);
      into.set(chunk, got);
      got += chunk.length;
    }
  } catch (err) {
    throw s3Error(err, url, 'read');
  }
  if (got < into.length) {
    throw storageUnavailable(`cannot read ${url}: got ${got} of ${into.length} bytes at ${offset}`);
  }
}

/** A whole small object (a shard's stats, a run's state). Refuses objects over `maxBytes`. */
export async function s3ReadSmall(url: string, maxBytes: number): Promise<Buffer | undefined> {
  const size = await s3Size(url);
  if (size === undefined) return undefined;
  if (size > maxBytes) throw storageUnavailable(`${url} is ${size} bytes, more than the ${maxBytes} expected`);
  const out = Buffer.alloc(size);
  await s3ReadRange(url, 0, out);
  return out;
}

/**
 * Writes a local file (or bytes) as one object. Big files go up in parts (lib-storage) and a failed upload aborts
 * its multipart upload, so an object is never half-written: it exists whole, or as it was before.
 */
export async function s3Put(url: string, body: { file: string } | { bytes: Uint8Array | string }): Promise<void> {
  const { bucket, key } = parseS3Url(url);
  const client = await s3Client();
  try {
    if ('bytes' in body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body.bytes }));
      return;
    }
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: createReadStream(body.file) },
      partSize: 16 * 1024 * 1024,
      queueSize: 4,
      leavePartsOnError: false,
    });
    await upload.done();
  } catch (err) {
    throw s3Error(err, url, 'write');
  }
}

/** Keys (relative to the prefix) of the objects under `s3://bucket/prefix/`, one level deep unless `recursive`. */
export async function s3List(folderUrl: string, { recursive = false } = {}): Promise<string[]> {
  const { bucket, key } = parseS3Url(folderUrl);
  const prefix = key === '' ? '' : `${key}/`;
  const client = await s3Client();
  const names: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ContinuationToken: token,
          ...(recursive ? {} : { Delimiter: '/' }),
        }),
      );
      for (const o of page.Contents ?? []) if (o.Key !== undefined) names.push(o.Key.slice(prefix.length));
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix !== undefined) names.push(p.Prefix.slice(prefix.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  } catch (err) {
    throw s3Error(err, folderUrl, 'list');
  }
  return names.sort();
}

/** Deletes objects of a folder by their relative names (1000 per request, S3's limit). */
export async function s3Delete(folderUrl: string, names: readonly string[]): Promise<void> {
  const { bucket, key } = parseS3Url(folderUrl);
  const prefix = key === '' ? '' : `${key}/`;
  const client = await s3Client();
  for (let i = 0; i < names.length; i += 1000) {
    const Objects = names.slice(i, i + 1000).map((n) => ({ Key: prefix + n }));
    try {
      const res = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects, Quiet: true } }));
      const failed = res.Errors?.[0];
      if (failed) throw new Error(`${failed.Key}: ${failed.Code} ${failed.Message}`);
    } catch (err) {
      throw s3Error(err, folderUrl, 'delete in');
    }
  }
}
