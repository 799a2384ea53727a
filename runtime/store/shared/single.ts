/**
 * A store's one-item calls written once over its batch calls, so every store answers them alike:
 * `enqueue` is `enqueueMany` of one item, `settle` is `settleMany` of one entry, and `complete`
 * is a settle with no effects.
 */
import { InternalError } from "../../errors.js";
import type {
  ClaimRef,
  Effects,
  EnqueueOptions,
  EnqueueResult,
  SettleResult,
  Store,
  WorkItem,
} from "../store.js";

/** `store.enqueue`: one item through `enqueueMany`, its refusal (if any) as the result. */
export async function enqueueOne(
  store: Pick<Store, "enqueueMany">,
  queue: string,
  item: WorkItem,
  options?: EnqueueOptions,
): Promise<EnqueueResult> {
  const { refused } = await store.enqueueMany(queue, [item], options);
  return refused ? { ok: false, ...refused } : { ok: true };
}

/** `store.settle`: one entry through `settleMany`. */
export async function settleOne(
  store: Pick<Store, "settleMany">,
  claim: ClaimRef,
  effects: Effects,
): Promise<SettleResult> {
  const [result] = await store.settleMany([{ claim, effects }]);
  if (result === undefined) throw new InternalError("settleMany returned no result for its entry");
  return result;
}

/** `store.complete`: a settle with no effects; false when the claim was no longer held. */
export async function completeOne(
  store: Pick<Store, "settleMany">,
  claim: ClaimRef,
): Promise<boolean> {
  return (await settleOne(store, claim, {})) !== "stale";
}
