/**
 * The BullMQ baseline's processor when it runs sandboxed (a child process per concurrent job,
 * BullMQ's own isolation, as kiln runs handlers in a container process): returns the job's data.
 */
export default async function processor(job: { data: number }): Promise<number> {
  return job.data;
}
