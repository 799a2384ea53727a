/**
 * The agent's HTTP API (fastify): control routes (apps, artifacts), invoke routes (calls, maps,
 * streams), status, logs, web endpoints and `GET /healthz`. Every route but `/healthz` (and web
 * endpoints marked public) needs the bearer token. Bodies are validated with the zod schemas of
 * `runtime/protocol.ts`; every error leaves as a WireError JSON with its HTTP status.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";
import {
  InvalidError,
  KilnError,
  NotFoundError,
  UnauthenticatedError,
  messageOf,
  toWire,
} from "../errors.js";
import {
  artifactBody,
  callBody,
  deployBody,
  logsQuery,
  mapInputsBody,
  mapOutputsQuery,
  usageQuery,
  waitQuery,
  type LogLine,
} from "../protocol.js";
import { decode, encode } from "../serde.js";
import type { Agent } from "./agent.js";
import { registerDataRoutes } from "./routes-data.js";
import { tokenMatcher } from "./auth.js";

/** Large enough for a map chunk or a bundle; each input is checked against the 2 MiB inline limit. */
const BODY_LIMIT_BYTES = 64 * 1024 * 1024;

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map(
    (issue) => `${[what, ...issue.path].join(".")}: ${issue.message}`,
  );
  throw new InvalidError(issues.join("\n"), { details: { issues } });
}

const appParams = z.object({ app: z.string().min(1) });
const fnParams = z.object({ app: z.string().min(1), fn: z.string().min(1) });
const idParams = z.object({ id: z.string().min(1) });
const shaParams = z.object({
  sha: z.string().regex(/^[0-9a-f]{64}$/, "must be a sha256 hex digest"),
});
const deleteQuery = z.object({
  graceMs: z.coerce.number().int().min(0).max(86_400_000).optional(),
});

/**
 * An empty usage answer for an app (or function) that was never deployed nor metered is a
 * NotFoundError naming what exists; a removed app keeps its usage (in the store, every agent's),
 * so that is asked first.
 */
async function requireMetered(agent: Agent, app: string, fn: string | undefined): Promise<void> {
  const metered = await agent.usage.metered();
  const deployed = agent.apps.list();
  const apps = [...new Set([...deployed.map((a) => a.name), ...metered.map((u) => u.app)])].sort();
  if (!apps.includes(app)) {
    throw new NotFoundError(
      `no app '${app}' is deployed or has usage; apps: ${apps.join(", ") || "(none)"}`,
    );
  }
  if (fn === undefined) return;
  const fns = new Set([
    ...(deployed.find((a) => a.name === app)?.functions ?? []),
    ...metered.filter((u) => u.app === app).map((u) => u.fn),
  ]);
  if (!fns.has(fn)) {
    throw new NotFoundError(
      `app '${app}' has no function '${fn}' deployed or metered; its functions: ${[...fns].sort().join(", ") || "(none)"}`,
    );
  }
}

export function buildServer(agent: Agent): FastifyInstance {
  const app = Fastify({
    bodyLimit: BODY_LIMIT_BYTES,
    logger: false,
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
  });
  const authorized = tokenMatcher(agent.token);

  app.setErrorHandler((error: unknown, _request, reply) => {
    if (error instanceof KilnError)
      return reply.status(error.status).send({ error: toWire(error) });
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      const wire = toWire(new InvalidError(messageOf(error)));
      return reply.status(status === 413 ? 413 : 400).send({ error: wire });
    }
    agent.logInternal(error);
    return reply.status(500).send({ error: toWire(error) });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({
      error: {
        type: "NotFoundError",
        code: "NOT_FOUND",
        message: `no route ${request.method} ${request.url}`,
      },
    });
  });

  app.addHook("onRequest", async (request) => {
    if (request.url === "/healthz" || request.url.startsWith("/web/")) return;
    if (!authorized(request.headers.authorization)) {
      throw new UnauthenticatedError(
        "missing or wrong bearer token: pass KILN_TOKEN (or read it from the agent's state dir, <state-dir>/token)",
      );
    }
  });

  app.get("/healthz", async () => ({ ok: true, version: agent.version }));

  // ---- control ---------------------------------------------------------------------------------
  app.put("/v1/artifacts/:sha", async (request) => {
    const { sha } = parse(shaParams, request.params, "params");
    await agent.apps.putArtifact(sha, parse(artifactBody, request.body, "body"));
    return { sha };
  });
  app.get("/v1/artifacts/:sha", async (request) => {
    const { sha } = parse(shaParams, request.params, "params");
    return { sha, exists: await agent.apps.hasArtifact(sha) };
  });
  app.put("/v1/apps/:app", async (request) => {
    const { app: name } = parse(appParams, request.params, "params");
    return agent.apps.deploy(name, parse(deployBody, request.body, "body"));
  });
  app.get("/v1/apps", async () => ({ apps: agent.apps.list() }));
  app.get("/v1/apps/:app", async (request) => {
    const { app: name } = parse(appParams, request.params, "params");
    const record = agent.apps.get(name);
    return {
      name: record.name,
      version: record.version,
      deployedAt: record.deployedAt,
      digest: record.digest,
      bundles: record.bundles,
      spec: agent.redacted(record.spec),
    };
  });
  app.delete("/v1/apps/:app", async (request) => {
    const { app: name } = parse(appParams, request.params, "params");
    const { graceMs } = parse(deleteQuery, request.query, "query");
    await agent.apps.delete(name, graceMs ?? 300_000);
    return { deleted: name };
  });

  // ---- invoke ----------------------------------------------------------------------------------
  app.post("/v1/apps/:app/functions/:fn/calls", async (request) => {
    const { app: name, fn } = parse(fnParams, request.params, "params");
    return agent.router.call(name, fn, parse(callBody, request.body, "body"));
  });
  app.get("/v1/calls/:id", async (request) => {
    const { id } = parse(idParams, request.params, "params");
    return agent.router.getCall(id);
  });
  app.get("/v1/calls/:id/result", async (request) => {
    const { id } = parse(idParams, request.params, "params");
    const { waitMs } = parse(waitQuery, request.query, "query");
    return agent.router.waitResult(id, waitMs);
  });
  app.get("/v1/calls/:id/stream", async (request) => {
    const { id } = parse(idParams, request.params, "params");
    const { waitMs } = parse(waitQuery, request.query, "query");
    return { items: await agent.router.streamItems(id, waitMs) };
  });
  app.post("/v1/calls/:id/cancel", async (request) => {
    const { id } = parse(idParams, request.params, "params");
    return agent.cancel(id);
  });
  app.post("/v1/apps/:app/functions/:fn/maps", async (request) => {
    const { app: name, fn } = parse(fnParams, request.params, "params");
    return agent.router.createMap(name, fn);
  });
  app.post("/v1/maps/:id/inputs", async (request, reply) => {
    const { id } = parse(idParams, request.params, "params");
    const result = await agent.router.mapInputs(id, parse(mapInputsBody, request.body, "body"));
    // Nothing accepted: the limit answers 429 like any other, whatever the client.
    if (result.accepted === 0 && result.refused)
      return reply.status(statusOf(result.refused.code)).send({ error: result.refused });
    return result;
  });
  app.get("/v1/maps/:id/outputs", async (request) => {
    const { id } = parse(idParams, request.params, "params");
    const { waitMs, max } = parse(mapOutputsQuery, request.query, "query");
    return { outputs: await agent.router.mapOutputs(id, waitMs, max) };
  });
  app.delete("/v1/maps/:id", async (request) => {
    const { id } = parse(idParams, request.params, "params");
    const { submitted } = parse(
      z.object({ submitted: z.coerce.number().int().min(0).max(100_000_000) }),
      request.query,
      "query",
    );
    return { removed: await agent.router.cancelMap(id, submitted) };
  });

  // ---- dicts, queues, ephemeral objects (routes-data.ts) ---------------------------------------------
  registerDataRoutes(app, {
    dicts: agent.dicts,
    queues: agent.queues,
    ephemerals: agent.ephemerals,
    onStop: (hook) => agent.onStop(hook),
  });

  // ---- status and logs ---------------------------------------------------------------------------
  app.get("/v1/status", async () => agent.status());
  app.get("/v1/usage", async (request) => {
    const query = parse(usageQuery, request.query, "query");
    let sinceMs: number | undefined;
    if (query.since !== undefined) {
      sinceMs = /^\d+$/.test(query.since) ? Number(query.since) : Date.parse(query.since);
      if (Number.isNaN(sinceMs))
        throw new InvalidError(
          `query.since: '${query.since}' is not an ISO date or epoch milliseconds`,
        );
    }
    const filter = {
      ...(query.app ? { app: query.app } : {}),
      ...(query.function ? { fn: query.function } : {}),
      ...(sinceMs !== undefined ? { sinceMs } : {}),
    };
    const usage = await agent.usage.totals(filter);
    if (usage.length === 0 && query.app !== undefined) {
      await requireMetered(agent, query.app, query.function);
    }
    return { usage };
  });
  app.get("/v1/apps/:app/logs", async (request, reply) => {
    const { app: name } = parse(appParams, request.params, "params");
    const query = parse(logsQuery, request.query, "query");
    agent.apps.get(name);
    const lines = await agent.logs.tail(name, query.function, query.tail);
    if (!query.follow) return { lines };
    return followLogs(request, reply, agent, name, query.function, lines);
  });

  // ---- web endpoints -----------------------------------------------------------------------------
  app.route({
    method: ["GET", "POST"],
    url: "/web/:app/:fn",
    handler: async (request, reply) => webEndpoint(agent, authorized, request, reply),
  });

  return app;
}

function statusOf(code: string): number {
  return code === "RESOURCE_EXHAUSTED"
    ? 429
    : code === "INVALID" || code === "PAYLOAD_TOO_LARGE"
      ? 400
      : 500;
}

async function followLogs(
  request: FastifyRequest,
  reply: FastifyReply,
  agent: Agent,
  app: string,
  fn: string | undefined,
  initial: LogLine[],
): Promise<FastifyReply> {
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-cache" });
  for (const line of initial) out.write(`${JSON.stringify(line)}\n`);
  const stop = agent.logs.follow(app, (line) => {
    if (!fn || line.function === fn) out.write(`${JSON.stringify(line)}\n`);
  });
  const ping = setInterval(() => out.write("\n"), 15_000);
  let unregister = (): void => undefined;
  const end = (): void => {
    clearInterval(ping);
    stop();
    unregister();
    out.end();
    // A hijacked response is not an idle keep-alive connection: close it, or agent.stop() waits for it.
    request.raw.socket?.destroy();
  };
  request.raw.on("close", end);
  unregister = agent.onStop(end);
  return reply;
}

async function webEndpoint(
  agent: Agent,
  authorized: (header: string | undefined) => boolean,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const { app: name, fn } = parse(fnParams, request.params, "params");
  const spec = agent.apps.function(name, fn);
  if (!spec.webEndpoint)
    throw new InvalidError(`${name}.${fn} is not a web endpoint (set webEndpoint in its spec)`);
  if (request.method !== spec.webEndpoint.method) {
    return reply.status(405).send({
      error: toWire(new InvalidError(`${name}.${fn} accepts ${spec.webEndpoint.method} only`)),
    });
  }
  if (!spec.webEndpoint.public && !authorized(request.headers.authorization)) {
    throw new UnauthenticatedError(
      `${name}.${fn} is a private web endpoint: send 'Authorization: Bearer <token>', or set webEndpoint.public`,
    );
  }
  const argument = request.method === "GET" ? { ...(request.query as object) } : request.body;
  const args = encode(argument === undefined ? [] : [argument]);
  const timeoutMs = spec.timeout * 1000 * (spec.retries.maxRetries + 1) + 60_000;
  const { callId } = await agent.router.call(name, fn, {
    args,
    mode: "value",
    spawn: false,
    waitMs: 0,
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await agent.router.waitResult(
      callId,
      Math.min(50_000, Math.max(1, deadline - Date.now())),
    );
    if (result.outcome) {
      if (!result.outcome.ok) {
        return reply
          .status(statusOf(result.outcome.error.code))
          .send({ error: result.outcome.error });
      }
      return reply
        .type("application/json")
        .send(JSON.stringify(decode(result.outcome.value) ?? null));
    }
    if (Date.now() >= deadline)
      return reply.status(504).send({
        error: {
          type: "TimeoutError",
          code: "TIMEOUT",
          message: `no result within ${timeoutMs} ms; call id ${callId}`,
        },
      });
  }
}
