/**
 * Handler references: `"./functions.ts#square"` or `"./model.ts#Model.embed"`, parsed into
 * `{ ref, file, exportName, method }`.
 */
import { z } from "zod";

/** File extensions a handler module may have. */
export const HANDLER_EXTENSIONS = [".ts", ".tsx", ".mts", ".cts", ".js", ".mjs"] as const;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const EXPECTED = `expected "./file.ts#export" or "./file.ts#Class.method"`;

/** A parsed handler reference. `method` is null for a plain exported function. */
export interface HandlerRef {
  /** The reference as written: `./functions.ts#Model.embed`. */
  ref: string;
  /** The module, relative to the app's directory: `./functions.ts`. */
  file: string;
  /** The export: a function, or a class whose `method` is the handler. */
  exportName: string;
  method: string | null;
}

/** What is wrong with a handler reference, or null. */
export function handlerProblem(ref: string): string | null {
  const shown = JSON.stringify(ref);
  const hash = ref.indexOf("#");
  if (hash < 0) return `${shown} has no "#export" part (${EXPECTED})`;
  const file = ref.slice(0, hash);
  const target = ref.slice(hash + 1);
  if (!file.startsWith("./") && !file.startsWith("../")) {
    return `${shown}: the file must be a relative path starting with "./" or "../" (${EXPECTED})`;
  }
  if (file.includes("\\")) return `${shown}: use "/" in the file path, not "\\"`;
  if (
    !HANDLER_EXTENSIONS.some(
      (ext) => file.endsWith(ext) && file.length > ext.length && !file.endsWith(`/${ext}`),
    )
  ) {
    return `${shown}: the file must end in ${HANDLER_EXTENSIONS.join(", ")}`;
  }
  const parts = target.split(".");
  if (parts.length > 2 || parts.some((part) => !IDENTIFIER.test(part))) {
    return `${shown}: ${JSON.stringify(target)} is not an export name or Class.method (${EXPECTED})`;
  }
  return null;
}

/** Parse a reference already known to be valid (see {@link handlerProblem}). */
function parseHandlerRef(ref: string): HandlerRef {
  const hash = ref.indexOf("#");
  const [exportName = "", method] = ref.slice(hash + 1).split(".");
  return { ref, file: ref.slice(0, hash), exportName, method: method ?? null };
}

export const HandlerSchema = z
  .string()
  .superRefine((ref, ctx) => {
    const problem = handlerProblem(ref);
    if (problem !== null) ctx.addIssue({ code: "custom", input: ref, message: problem });
  })
  .transform(parseHandlerRef);
