/** Our honest user agent (img2dataset PR #477 asks for the same): who we are, where to read about us, your token. */
export const USER_AGENT_NAME = 'clipstream/0.1';
export const USER_AGENT_URL = 'https://github.com/clipstream/clipstream';

/** `clipstream/0.1 (+https://github.com/clipstream/clipstream)`, or `… (+https://…; {token})` with a token. */
export function userAgent(token?: string): string {
  const t = token?.trim();
  return `${USER_AGENT_NAME} (+${USER_AGENT_URL}${t ? `; ${t}` : ''})`;
}
