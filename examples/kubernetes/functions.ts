/** The example's handlers: one on CPU, one that reports the GPUs its container was given. */
export function square(x: number): number {
  return x * x;
}

/** Which GPUs this container sees: the agent hands each container its own (CUDA_VISIBLE_DEVICES). */
export function gpus(): { visible: string | null; host: string } {
  return {
    visible: process.env["CUDA_VISIBLE_DEVICES"] ?? null,
    host: process.env["HOSTNAME"] ?? "",
  };
}
