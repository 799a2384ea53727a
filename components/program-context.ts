/**
 * What `kiln preview/deploy/run` tell the components while they evaluate a program: the program's
 * directory and the command's name. Kept apart from program-root.ts (which needs @pulumi/pulumi) so
 * that the CLI sets it without loading Pulumi before it evaluates a program.
 */
// Global (not module) state, so that every copy of kiln in a process agrees.
const ROOT = Symbol.for("kiln.components.programRoot");
const EVALUATOR = Symbol.for("kiln.components.evaluator");

type Globals = { [ROOT]?: string; [EVALUATOR]?: string };

/** Set (or clear, with undefined) the program directory and the name of the evaluator (`kiln preview`). */
export function setProgramContext(context: { root: string; evaluator: string } | undefined): void {
  const globals = globalThis as Globals;
  if (context === undefined) {
    delete globals[ROOT];
    delete globals[EVALUATOR];
  } else {
    globals[ROOT] = context.root;
    globals[EVALUATOR] = context.evaluator;
  }
}

/** The kiln command evaluating the program without the Pulumi engine ("kiln preview"), or null under the engine. */
export function kilnEvaluator(): string | null {
  return (globalThis as Globals)[EVALUATOR] ?? null;
}

/** The program directory kiln set, or undefined under the Pulumi engine. */
export function programRootFromKiln(): string | undefined {
  return (globalThis as Globals)[ROOT];
}
