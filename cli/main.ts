#!/usr/bin/env node
/** The `kiln` executable (package.json `bin`). */
import { run } from "./program.js";

const code = await run(process.argv);
// Exit once stdout has flushed, without waiting for idle keep-alive sockets.
process.stdout.write("", () => process.exit(code));
