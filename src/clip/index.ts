export { loadClipModel, requiredClipFiles, type ClipModel, type ClipDtype, type LoadClipOptions } from './model.js';
export {
  writeColorClip,
  colorClipFiles,
  colorVector,
  colorClipVocabulary,
  COLOR_WORDS,
  type ColorClipOptions,
  type Rgb,
} from './color-clip.js';
