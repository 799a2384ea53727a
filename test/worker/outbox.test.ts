/** The IPC outbox: at once when idle, batched (in order) while a send is in flight. */
import { describe, expect, it } from "vitest";
import { Outbox, unbatch, type Batch } from "../../runtime/worker/outbox.js";

type Msg = { t: "m"; n: number };

function channel() {
  const sent: Batch<Msg>[] = [];
  const pending: ((error: Error | null) => void)[] = [];
  const outbox = new Outbox<Msg>((message, done) => {
    sent.push(message);
    pending.push(done);
  });
  /** Finish the oldest send still in flight. */
  const complete = (error: Error | null = null): void => pending.shift()?.(error);
  return { outbox, sent, complete };
}

const m = (n: number): Msg => ({ t: "m", n });

describe("Outbox", () => {
  it("sends a lone message at once, as itself", () => {
    const { outbox, sent } = channel();
    outbox.post(m(1));
    expect(sent).toEqual([m(1)]);
  });

  it("batches what comes while a send is in flight into one `many`, in order", () => {
    const { outbox, sent, complete } = channel();
    outbox.post(m(1));
    outbox.post(m(2));
    outbox.post(m(3));
    expect(sent).toEqual([m(1)]);
    complete();
    expect(sent).toEqual([m(1), { t: "many", messages: [m(2), m(3)] }]);
    outbox.post(m(4));
    complete();
    expect(sent.at(-1)).toEqual(m(4));
    complete();
    outbox.post(m(5));
    expect(sent.at(-1)).toEqual(m(5));
    expect(sent.flatMap((b) => unbatch(b)).map((x) => x.n)).toEqual([1, 2, 3, 4, 5]);
  });

  it("calls each message's done once its write finished, with the write's error", () => {
    const { outbox, complete } = channel();
    const done: string[] = [];
    outbox.post(m(1), (e) => done.push(`1:${e?.message ?? "ok"}`));
    outbox.post(m(2), (e) => done.push(`2:${e?.message ?? "ok"}`));
    outbox.post(m(3), (e) => done.push(`3:${e?.message ?? "ok"}`));
    expect(done).toEqual([]);
    complete();
    expect(done).toEqual(["1:ok"]);
    complete(new Error("EPIPE"));
    expect(done).toEqual(["1:ok", "2:EPIPE", "3:EPIPE"]);
  });

  it("unbatch returns a plain message as a list of one", () => {
    expect(unbatch<Msg>(m(7))).toEqual([m(7)]);
    expect(unbatch<Msg>({ t: "many", messages: [m(1), m(2)] })).toEqual([m(1), m(2)]);
  });
});
