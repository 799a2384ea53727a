export { RedisStore, type RedisStoreOptions, type ClaimInfo } from "./redis-store.js";
