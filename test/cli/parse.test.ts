import { describe, expect, it } from 'vitest';
import { normalizeFlags, toBoolean, toLocalPath, toNumber } from '../../src/cli/parse.js';
import { parseList } from '../../src/core/validation.js';

describe('flag parsing', () => {
  it('accepts a JSON list as img2dataset users type it, or a comma-separated list', () => {
    expect(parseList('["license", "width"]')).toEqual(['license', 'width']);
    expect(parseList('license,width')).toEqual(['license', 'width']);
    expect(parseList('[]')).toEqual([]);
    expect(() => parseList('["a",')).toThrow(/JSON list or a comma-separated list/);
    expect(() => parseList('[1,2]')).toThrow(/list of strings/);
  });

  it('accepts snake_case long flags', () => {
    expect(normalizeFlags(['node', 'cli', 'download', '--url_list', 'a_b.txt', '--image_size=64'])).toEqual([
      'node',
      'cli',
      'download',
      '--url-list',
      'a_b.txt',
      '--image-size=64',
    ]);
  });

  it('parses numbers and booleans with a message naming the flag', () => {
    expect(toNumber('--x')('12')).toBe(12);
    expect(toNumber('--x')('inf')).toBe(Infinity);
    expect(() => toNumber('--timeout')('ten')).toThrow(/Expected a number for --timeout but received "ten"/);
    expect(toBoolean('--b')(undefined)).toBe(true);
    expect(toBoolean('--b')('False')).toBe(false);
    expect(() => toBoolean('--skip-reencode')('maybe')).toThrow(/--skip-reencode/);
  });

  it('folder and file flags take local paths or file:// URLs; other schemes are refused naming the flag', () => {
    expect(toLocalPath('--index')('./idx')).toBe('./idx');
    expect(toLocalPath('--index')('file:///data/idx')).toBe('/data/idx');
    expect(() => toLocalPath('--index')('s3://bucket/idx')).toThrow(
      /Expected a local path for --index but received "s3:\/\/bucket\/idx": s3:\/\/ paths are not supported \(mount the bucket/,
    );
    expect(() => toLocalPath('<spec>')('HF://org/spec.yaml')).toThrow(/for <spec>.*hf:\/\/ paths are not supported/);
    expect(() => toLocalPath('--index')('file://nas/share/idx')).toThrow(
      /local path for --index but received "file:\/\/nas\/share\/idx": .*file:\/\/\/absolute\/path/,
    );
    expect(toLocalPath('--image', { urls: true })('https://example.com/cat.jpg')).toBe('https://example.com/cat.jpg');
    expect(() => toLocalPath('--image', { urls: true })('s3://b/cat.jpg')).toThrow(
      /local path or an http\(s\) URL for --image.*only local paths and http\(s\) URLs are supported/,
    );
  });
});
