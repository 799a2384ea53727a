#!/usr/bin/env node
/** The `kiln` executable (package.json `bin`). */
import { run } from "./program.js";

// `kiln logs --follow | head`: the reader went away; that is a normal end, not a crash.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const code = await run(process.argv);
// Exit once stdout has flushed, without waiting for idle keep-alive sockets.
process.stdout.write("", () => process.exit(code));
