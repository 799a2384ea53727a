/**
 * The hello app as a Pulumi program: `pulumi up` (Pulumi.yaml at the repo root) deploys it to the
 * agent on this machine; `kiln preview examples/hello` shows what would change, `kiln deploy
 * examples/hello` applies it, and `kiln run examples/hello examples/hello/main.ts` runs main.ts
 * against a temporary copy. `app.json` beside it is the same app as a JSON spec (`kiln deploy --spec`).
 */
import { App, GpuPool, ServerlessFunction } from "kiln";

// The agent on this machine: `kiln agent`, or the embedded one `kiln run` starts.
const pool = new GpuPool("pool", { target: { kind: "local" } });
const app = new App("hello", { pool });

new ServerlessFunction("square", { app, handler: "./functions.ts#square", maxContainers: 2 });
new ServerlessFunction("add", { app, handler: "./functions.ts#add" });
new ServerlessFunction("embed", {
  app,
  handler: "./functions.ts#Embedder.embed",
  memory: [128, 512],
});
new ServerlessFunction("countdown", { app, handler: "./functions.ts#countdown" });
new ServerlessFunction("fail", { app, handler: "./functions.ts#fail", retries: 1 });
new ServerlessFunction("rich", { app, handler: "./functions.ts#rich" });
new ServerlessFunction("sumOfSquares", { app, handler: "./functions.ts#sumOfSquares" });
new ServerlessFunction("slow", { app, handler: "./functions.ts#slow", timeout: 30 });

export const appName = app.name;
export const endpoint = app.endpoint;
export const specHash = app.specHash;
