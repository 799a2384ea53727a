export {
  EmbeddedStore,
  DEFAULT_COMPACT_BYTES,
  type EmbeddedStoreOptions,
} from "./embedded-store.js";
export { LOG_FILE } from "./log-file.js";
