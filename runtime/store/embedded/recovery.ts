/**
 * Opening the embedded store on a replayed log: items that were claimed go back to the front of
 * their queue (their holder died with the process; the next delivery counts the lost one), and
 * every deadline in the state is tracked again.
 */
import type { Core } from "./core.js";
import type { Item } from "./state.js";

export function recover(core: Core): void {
  const { state, deadlines } = core;
  const claimed: Item[] = [];
  for (const queue of state.queues.values()) {
    for (const item of queue.items.values()) {
      if (item.state === "claimed") claimed.push(item);
      else if (item.state === "delayed") deadlines.trackItem(item);
    }
  }
  // Lapse the newest first, so the oldest claim ends up at the very front.
  claimed.sort((a, b) => b.fence - a.fence);
  for (const item of claimed) core.write({ op: "lapse", q: item.queue, id: item.id });
  for (const entry of state.keys.values()) deadlines.trackKey(entry);
  for (const lock of state.locks.values()) deadlines.trackLock(lock);
  for (const hash of state.hashes.values())
    for (const field of hash.fields.values()) deadlines.trackField(field);
  for (const parts of state.partitions.values())
    for (const entry of parts.values()) deadlines.trackPartition(entry);
  deadlines.catchUp();
}
