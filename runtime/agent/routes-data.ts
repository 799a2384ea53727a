/**
 * HTTP routes of dicts, queues and ephemeral objects (registered by `server.ts`). A dict or queue
 * is addressed by its reference in the path (`app:<app>:<name>`, `named:<name>`,
 * `ephemeral:<id>`, URL-encoded); keys, values and items travel serde-encoded inside JSON.
 *
 * A blocked queue `get` holds its request up to `waitMs` (<= 50 s); it is aborted, taking
 * nothing, when the caller hangs up or the agent stops.
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { InvalidError } from "../errors.js";
import {
  dictEntriesQuery,
  dictKeyBody,
  dictLookupBody,
  dictPutBody,
  dictUpdateBody,
  ephemeralBody,
  queueClearBody,
  queueGetBody,
  queueItemsQuery,
  queueLenQuery,
  queueLookupBody,
  queuePutBody,
} from "../protocol.js";
import type { Dicts } from "./data/dicts.js";
import type { Queues } from "./data/queues.js";
import type { Ephemerals } from "./data/refs.js";

export interface DataRoutesContext {
  dicts: Dicts;
  queues: Queues;
  ephemerals: Ephemerals;
  /** Run `hook` when the agent stops; returns a function that unregisters it. */
  onStop(hook: () => void): () => void;
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map(
    (issue) => `${[what, ...issue.path].join(".")}: ${issue.message}`,
  );
  throw new InvalidError(issues.join("\n"), { details: { issues } });
}

const refParams = z.object({ ref: z.string().min(1) });
const idParams = z.object({ id: z.string().min(1) });

export function registerDataRoutes(app: FastifyInstance, data: DataRoutesContext): void {
  const ref = (params: unknown): string => parse(refParams, params, "params").ref;

  // ---- dicts -------------------------------------------------------------------------------------
  app.post("/v1/dicts", async (request) =>
    data.dicts.lookup(parse(dictLookupBody, request.body, "body")),
  );
  app.get("/v1/dicts/:ref", async (request) => data.dicts.info(ref(request.params)));
  app.delete("/v1/dicts/:ref", async (request) => data.dicts.delete(ref(request.params)));
  app.post("/v1/dicts/:ref/get", async (request) =>
    data.dicts.get(ref(request.params), parse(dictKeyBody, request.body, "body").key),
  );
  app.post("/v1/dicts/:ref/contains", async (request) =>
    data.dicts.contains(ref(request.params), parse(dictKeyBody, request.body, "body").key),
  );
  app.post("/v1/dicts/:ref/put", async (request) =>
    data.dicts.put(ref(request.params), parse(dictPutBody, request.body, "body")),
  );
  app.post("/v1/dicts/:ref/update", async (request) =>
    data.dicts.update(ref(request.params), parse(dictUpdateBody, request.body, "body").entries),
  );
  app.post("/v1/dicts/:ref/pop", async (request) =>
    data.dicts.pop(ref(request.params), parse(dictKeyBody, request.body, "body").key),
  );
  app.get("/v1/dicts/:ref/len", async (request) => ({
    len: await data.dicts.len(ref(request.params)),
  }));
  app.get("/v1/dicts/:ref/entries", async (request) => {
    const { cursor, count } = parse(dictEntriesQuery, request.query, "query");
    return data.dicts.entries(ref(request.params), cursor, count);
  });
  app.post("/v1/dicts/:ref/clear", async (request) => data.dicts.clear(ref(request.params)));

  // ---- queues ------------------------------------------------------------------------------------
  app.post("/v1/queues", async (request) =>
    data.queues.lookup(parse(queueLookupBody, request.body, "body")),
  );
  app.get("/v1/queues/:ref", async (request) => data.queues.info(ref(request.params)));
  app.delete("/v1/queues/:ref", async (request) => data.queues.delete(ref(request.params)));
  app.post("/v1/queues/:ref/put", async (request) => {
    const body = parse(queuePutBody, request.body, "body");
    return data.queues.put(ref(request.params), body.items, body.partition);
  });
  app.post("/v1/queues/:ref/get", async (request, reply) => {
    const target = ref(request.params);
    const body = parse(queueGetBody, request.body, "body");
    const controller = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableEnded) controller.abort();
    };
    reply.raw.once("close", onClose);
    const unregister = data.onStop(() => controller.abort());
    try {
      return await data.queues.get(target, body, controller.signal);
    } finally {
      unregister();
      reply.raw.off("close", onClose);
    }
  });
  app.get("/v1/queues/:ref/len", async (request) => {
    const query = parse(queueLenQuery, request.query, "query");
    return data.queues.len(ref(request.params), query.partition, query.total);
  });
  app.post("/v1/queues/:ref/clear", async (request) => {
    const body = parse(queueClearBody, request.body, "body");
    return data.queues.clear(ref(request.params), body.partition, body.all);
  });
  app.get("/v1/queues/:ref/items", async (request) => {
    const query = parse(queueItemsQuery, request.query, "query");
    return data.queues.items(ref(request.params), query.partition, query.start, query.count);
  });

  // ---- ephemeral dicts and queues ----------------------------------------------------------------
  app.post("/v1/ephemeral", async (request) => {
    const body = parse(ephemeralBody, request.body, "body");
    return data.ephemerals.create(body.kind, body.ttlMs);
  });
  app.post("/v1/ephemeral/:id/heartbeat", async (request) =>
    data.ephemerals.heartbeat(parse(idParams, request.params, "params").id),
  );
}
