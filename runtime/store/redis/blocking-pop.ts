/**
 * Blocking list pops (`listPop` / `partitionPop` with `waitMs`): each waits on a connection of its
 * own (BLMPOP, or BLPOP before Redis 7) and is ended early with CLIENT UNBLOCK on abort or close.
 */
import type { Redis } from "ioredis";
import type { Clock } from "../../clock.js";
import { isWrongType, sleep, withTimeout, type Connections } from "./connections.js";

interface BlockedPop {
  readonly conn: Redis;
  /** CLIENT ID of `conn`, asked for right before the blocking pop. */
  readonly clientId: Promise<number>;
  /** The pop's reply (or failure) has come back. */
  returned: boolean;
  unblocking: boolean;
}

export class BlockingPops {
  private readonly blocked = new Set<BlockedPop>();

  constructor(
    private readonly conns: Connections,
    private readonly clock: Clock,
  ) {}

  /** Pop up to `max` values from list `key`, waiting up to `waitMs` for the first. */
  async pop(
    key: string,
    max: number,
    waitMs: number,
    signal: AbortSignal | undefined,
  ): Promise<string[]> {
    const { conns } = this;
    const conn = await conns.exec(() => conns.acquireBlocking());
    if (conns.closed || signal?.aborted) {
      conns.releaseBlocking(conn, true);
      return [];
    }
    // Asked for on the same connection right before the pop: the reply arrives before the pop
    // blocks, so an abort can name the connection to CLIENT UNBLOCK.
    const clientId = conn.client("ID").then((id) => Number(id));
    clientId.catch(() => {});
    const timeout = (Math.max(1, Math.ceil(waitMs)) / 1000).toFixed(3);
    const popping: Promise<string[]> = conns.hasBlmpop
      ? conn.blmpop(timeout, 1, key, "LEFT", "COUNT", max).then((reply) => (reply ? reply[1] : []))
      : conn.blpop(key, timeout).then((reply) => (reply ? [reply[1]] : []));
    const pop: BlockedPop = { conn, clientId, returned: false, unblocking: false };
    this.blocked.add(pop);
    const onAbort = (): void => void this.unblock(pop);
    signal?.addEventListener("abort", onAbort, { once: true });
    // A server that stops answering (frozen, partitioned) never ends the pop: give up on the
    // connection a command timeout after the pop should have returned.
    const guard = this.clock.setTimeout(() => conn.disconnect(), waitMs + conns.commandTimeoutMs);
    let healthy = true;
    let values: string[];
    try {
      values = await popping;
    } catch (error) {
      healthy = false;
      if (conns.closed && !isWrongType(error)) return [];
      throw conns.fail(error);
    } finally {
      pop.returned = true;
      guard.cancel();
      signal?.removeEventListener("abort", onAbort);
      this.blocked.delete(pop);
      conns.releaseBlocking(conn, healthy);
    }
    if (!conns.hasBlmpop && values.length > 0 && max > 1) {
      // BLPOP took one; the rest is not atomic with it (Redis < 7), but nothing popped is dropped.
      try {
        values.push(...((await conns.cmd.lpop(key, max - 1)) ?? []));
      } catch {
        // the first value is ours already; the rest stays for the next pop
      }
    }
    return values;
  }

  /** Close: unblock every pop (each returns what it has, or nothing). */
  unblockAll(): void {
    for (const pop of [...this.blocked]) void this.unblock(pop);
  }

  /** Close: wait up to `graceMs` for the pops to return, then drop the connections of the rest. */
  async ended(graceMs: number): Promise<void> {
    await withTimeout(
      (async () => {
        while (this.blocked.size > 0) await sleep(5);
      })(),
      graceMs,
    );
    for (const pop of this.blocked) pop.conn.disconnect();
  }

  /** End a blocked pop early: CLIENT UNBLOCK (its pop returns what it has, or nothing), else disconnect. */
  private async unblock(pop: BlockedPop): Promise<void> {
    if (pop.unblocking) return;
    pop.unblocking = true;
    try {
      const id = await pop.clientId;
      for (let attempt = 0; attempt < 5 && !pop.returned; attempt++) {
        if ((await this.conns.cmd.client("UNBLOCK", id)) === 1) return;
        // Not blocked (yet, or any more): give the pop's reply a moment to arrive.
        await sleep(10 * (attempt + 1));
      }
      if (!pop.returned) pop.conn.disconnect();
    } catch {
      if (!pop.returned) pop.conn.disconnect();
    }
  }
}
