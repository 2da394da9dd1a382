export * from './async.js';
export * from './errors.js';
export type * from './types.js';
