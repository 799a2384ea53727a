/**
 * One side of the agent <-> worker IPC channel: a message goes out at once when the channel is
 * idle; those posted while a send is in flight go together in the next one, as a `many`
 * message. A lone call waits for nothing, and a map's inputs and results cross in a few writes
 * instead of one per input (one write syscall and one wake-up of the other process each).
 */
export type Batch<M> = M | { t: "many"; messages: M[] };

type RawSend<M> = (message: Batch<M>, done: (error: Error | null) => void) => void;

export class Outbox<M> {
  private queued: { message: M; done?: (error: Error | null) => void }[] = [];
  private busy = false;

  /** `send`: the channel's own send (it calls `done` once the write is finished or failed). */
  constructor(private readonly send: RawSend<M>) {}

  /** Send `message` in order after everything posted before it; `done` once it is written. */
  post(message: M, done?: (error: Error | null) => void): void {
    this.queued.push(done ? { message, done } : { message });
    if (!this.busy) this.flush();
  }

  private flush(): void {
    const batch = this.queued;
    if (batch.length === 0) return;
    this.queued = [];
    this.busy = true;
    const message: Batch<M> =
      batch.length === 1 ? batch[0]!.message : { t: "many", messages: batch.map((b) => b.message) };
    this.send(message, (error) => {
      this.busy = false;
      for (const { done } of batch) done?.(error);
      this.flush();
    });
  }
}

/** Each message of what arrived, in order. */
export function unbatch<M>(message: Batch<M>): M[] {
  const many = message as { t?: unknown; messages?: M[] };
  return many.t === "many" && Array.isArray(many.messages) ? many.messages : [message as M];
}
