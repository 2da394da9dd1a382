/**
 * A message fit for an HTTP client: no Rust source locations (LanceDB's errors carry `…/lance-…/src/x.rs:12:5`) and
 * no server-side file paths: an absolute path under a usual filesystem root keeps only its last part, which is
 * what the user named (an index folder). URL paths and API routes (`/streams/x/…`) are left alone.
 */
const FILESYSTEM_PATH =
  /(^|[\s'"(=[])\/(?:home|root|tmp|var|usr|opt|srv|mnt|media|data|work|Users|private|etc|run|nix|scratch)(?:\/[^\s'"()/,:;]+)*\/([^\s'"()/,:;]+)/g;

export function publicMessage(message: string): string {
  return message.replace(/,?\s*(?:at\s+)?[^\s'"()]*\.rs:\d+(?::\d+)?/g, '').replace(FILESYSTEM_PATH, '$1$2');
}
