/** `tsc --noEmit` over every example (programs, handlers, `kiln run` entries), against kiln's own types. */
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { removeDir, repoRoot } from "./helpers.js";

let dir: string;
let tsconfig: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-tsc-"));
  tsconfig = join(dir, "tsconfig.json");
  await writeFile(
    tsconfig,
    JSON.stringify({
      extends: join(repoRoot, "tsconfig.json"),
      compilerOptions: {
        noEmit: true,
        rootDir: repoRoot,
        typeRoots: [join(repoRoot, "node_modules", "@types")],
      },
      include: [join(repoRoot, "examples", "**", "*.ts")],
    }),
  );
});
afterAll(async () => removeDir(dir));

const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");

it("every example type-checks", async () => {
  const listed = await execa(process.execPath, [tsc, "-p", tsconfig, "--listFilesOnly"], {
    reject: false,
    timeout: 120_000,
  });
  for (const example of await readdir(join(repoRoot, "examples"))) {
    for (const file of (await readdir(join(repoRoot, "examples", example))).filter((f) =>
      f.endsWith(".ts"),
    )) {
      expect(listed.stdout).toContain(join(repoRoot, "examples", example, file));
    }
  }
  const result = await execa(process.execPath, [tsc, "-p", tsconfig], {
    reject: false,
    timeout: 120_000,
  });
  expect(result.stdout).toBe("");
  expect(result.exitCode).toBe(0);
});
