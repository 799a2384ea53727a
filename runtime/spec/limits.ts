/**
 * Every default and limit of kiln, in one place (after the platform kiln mirrors).
 *
 * Schemas, the agent and the client read these constants; nothing else hard-codes a number.
 * Units are in the names: `_S` seconds, `_MS` milliseconds, `_MIB` mebibytes, `_BYTES` bytes.
 */
export { MAX_INLINE_PAYLOAD_BYTES } from "../serde.js";

// ── Names ────────────────────────────────────────────────────────────────────────────────────────
/** Longest app name. */
export const MAX_APP_NAME_LENGTH = 63;
/** Longest function, dict, queue or schedule name. */
export const MAX_RESOURCE_NAME_LENGTH = 64;

// ── CPU (cores) ──────────────────────────────────────────────────────────────────────────────────
/** CPU request when none is given. */
export const DEFAULT_CPU = 0.125;
/** The default (soft) CPU limit is the request plus this many cores. */
export const DEFAULT_CPU_HEADROOM = 4;
/** Absolute CPU ceiling per container, unless the pool's maxima say otherwise. */
export const MAX_CPU = 64;

// ── Memory (MiB) ─────────────────────────────────────────────────────────────────────────────────
/** Memory request when none is given. No memory limit by default. */
export const DEFAULT_MEMORY_MIB = 128;
export const MIN_MEMORY_MIB = 1;
/** Absolute memory ceiling per container, unless the pool's maxima say otherwise. */
export const MAX_MEMORY_MIB = 1_048_576;

// ── GPU ──────────────────────────────────────────────────────────────────────────────────────────
export const DEFAULT_GPU_COUNT = 1;
export const MAX_GPUS_PER_CONTAINER = 8;

// ── Ephemeral disk (MiB) ─────────────────────────────────────────────────────────────────────────
export const MIN_EPHEMERAL_DISK_MIB = 1;
export const MAX_EPHEMERAL_DISK_MIB = 3_145_728;
/** For billing, the memory request is at least the ephemeral disk divided by this. */
export const EPHEMERAL_DISK_BILLING_RATIO = 20;

// ── Scaling ──────────────────────────────────────────────────────────────────────────────────────
export const DEFAULT_MIN_CONTAINERS = 0;
export const DEFAULT_BUFFER_CONTAINERS = 0;
export const DEFAULT_SCALEDOWN_WINDOW_S = 60;
export const MIN_SCALEDOWN_WINDOW_S = 1;
export const MAX_SCALEDOWN_WINDOW_S = 86_400;

// ── Inputs per container ─────────────────────────────────────────────────────────────────────────
export const DEFAULT_MAX_INPUTS = 1;
/** Most inputs one container may run at once (`maxInputs`). */
export const MAX_INPUTS_PER_CONTAINER = 1000;

// ── Batching ─────────────────────────────────────────────────────────────────────────────────────
export const MIN_BATCH_SIZE = 1;
export const MAX_BATCH_SIZE = 1000;
export const MIN_BATCH_WAIT_MS = 0;
export const MAX_BATCH_WAIT_MS = 600_000;

// ── Retries (user retries; platform failures are retried apart from them) ────────────────────────
export const DEFAULT_RETRIES = 0;
export const MAX_RETRIES = 10;
export const DEFAULT_BACKOFF_COEFFICIENT = 2;
export const MIN_BACKOFF_COEFFICIENT = 1;
export const MAX_BACKOFF_COEFFICIENT = 10;
export const DEFAULT_INITIAL_DELAY_MS = 1000;
export const MAX_INITIAL_DELAY_MS = 60_000;
export const DEFAULT_MAX_DELAY_MS = 60_000;
export const MIN_MAX_DELAY_MS = 1;
export const MAX_MAX_DELAY_MS = 60_000;
/** Times an input is retried after a platform failure (a worker or host died), apart from user retries. */
export const PLATFORM_RETRIES = 3;

// ── Timeouts (seconds) ───────────────────────────────────────────────────────────────────────────
export const DEFAULT_TIMEOUT_S = 300;
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 86_400;

// ── Submission caps (checked by the agent with ResourceExhaustedError) ──────────────────────────
/** Pending inputs per function for `.remote()` / `.map()`. */
export const MAX_PENDING_INPUTS = 2000;
/** Pending inputs per function for `.spawn()`. */
export const MAX_SPAWN_PENDING_INPUTS = 1_000_000;
/** Total inputs (pending and running) per function. */
export const MAX_TOTAL_INPUTS = 25_000;
/** Inputs one `.map()` invocation keeps in flight at most. */
export const MAX_MAP_INFLIGHT = 1000;
/** How long a finished call's result is kept. */
export const RESULT_TTL_MS = 24 * 60 * 60 * 1000;

// ── Dicts ────────────────────────────────────────────────────────────────────────────────────────
/** An entry not read or written for this long expires. 7 days. */
export const DEFAULT_DICT_INACTIVITY_EXPIRY_S = 604_800;
export const MIN_DICT_INACTIVITY_EXPIRY_S = 60;
export const MAX_DICT_INACTIVITY_EXPIRY_S = 31_536_000;
export const DEFAULT_DICT_MAX_ENTRIES = 10_000_000;
export const MAX_DICT_MAX_ENTRIES = 1_000_000_000;
/** Largest dict value, encoded. */
export const MAX_DICT_VALUE_BYTES = 1_048_576;
/** Largest dict key, encoded. */
export const MAX_DICT_KEY_BYTES = 65_536;
/** Entries one `update()` request writes at once (the client sends larger updates in parts). */
export const MAX_DICT_UPDATE_ENTRIES = 10_000;

// ── Queues ───────────────────────────────────────────────────────────────────────────────────────
/** A partition with no activity for this long expires. 1 day. */
export const DEFAULT_QUEUE_PARTITION_TTL_S = 86_400;
export const MIN_QUEUE_PARTITION_TTL_S = 1;
/** 7 days. */
export const MAX_QUEUE_PARTITION_TTL_S = 604_800;
export const DEFAULT_QUEUE_MAX_PARTITION_ITEMS = 5000;
export const MAX_QUEUE_MAX_PARTITION_ITEMS = 5000;
export const DEFAULT_QUEUE_MAX_PARTITIONS = 100_000;
export const MAX_QUEUE_MAX_PARTITIONS = 1_000_000;
/** Largest queue item, encoded. */
export const MAX_QUEUE_ITEM_BYTES = 1_048_576;
/** Partition keys are 1..64 characters. */
export const MAX_QUEUE_PARTITION_KEY_LENGTH = 64;
/** Items one `getMany()` takes at most. */
export const MAX_QUEUE_GET_MANY = 1000;

// ── Ephemeral dicts and queues ───────────────────────────────────────────────────────────────────
/** An ephemeral dict or queue is deleted this long after its owner's last heartbeat. */
export const DEFAULT_EPHEMERAL_TTL_MS = 60_000;
export const MIN_EPHEMERAL_TTL_MS = 3_000;
export const MAX_EPHEMERAL_TTL_MS = 86_400_000;

// ── Schedules ────────────────────────────────────────────────────────────────────────────────────
export const DEFAULT_SCHEDULE_TIMEZONE = "UTC";
/** The shortest period a schedule may have. */
export const MIN_SCHEDULE_PERIOD_S = 1;
