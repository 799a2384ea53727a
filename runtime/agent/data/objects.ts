/**
 * What dicts and queues share on the agent: resolving a reference (`app:`, `named:`,
 * `ephemeral:`) to the object's settings and where its data lives in the store, writing a named
 * one's settings record, and deleting one. What differs between them (the store primitive, the
 * settings) comes in a {@link DataKindSpec}.
 */
import { InvalidError, NotFoundError } from "../../errors.js";
import { formatDataRef } from "../../protocol.js";
import { RESOURCE_NAME_PATTERN, type CompiledAppSpec } from "../../spec/index.js";
import type { Store } from "../../store/store.js";
import { refOf, type AppLookup, type DataKind, type Ephemerals, type NamedRecord } from "./refs.js";

/** One kind of data object (dict, queue): its names, its store keys, its settings. */
export interface DataKindSpec<S> {
  kind: DataKind;
  /** Where an object's data lives in the store (a dict's hash, a queue's partition group), by its canonical ref. */
  dataKey(ref: string): string;
  /** The store key of a named object's settings record. */
  recordKey(name: string): string;
  /** The objects of this kind an app declares, by name. */
  declared(spec: CompiledAppSpec): Record<string, S>;
  /** The settings of an ephemeral object. */
  ephemeralSettings(): S;
  /** Drop an object's data (by its `dataKey`). */
  drop(store: Store, dataKey: string): Promise<unknown>;
}

/** A reference resolved to a live object. */
export interface ResolvedObject<S> {
  /** The canonical reference. */
  ref: string;
  /** Where its data lives (see {@link DataKindSpec.dataKey}). */
  dataKey: string;
  kind: "app" | "named" | "ephemeral";
  /** The declared or named object's name, or the ephemeral one's id. */
  name: string;
  app?: string;
  settings: S;
  createdAt?: string;
}

export class DataObjects<S> {
  constructor(
    private readonly store: Store,
    private readonly apps: AppLookup,
    private readonly ephemerals: Ephemerals,
    private readonly spec: DataKindSpec<S>,
  ) {}

  /** Write a named object's settings record unless one exists (the first `createIfMissing` wins). */
  async create(name: string, settings: S): Promise<void> {
    const record: NamedRecord<S> = { createdAt: new Date().toISOString(), settings };
    await this.store.set(this.spec.recordKey(name), JSON.stringify(record), { ifAbsent: true });
  }

  /** The object `text` refers to; NotFoundError when there is none. */
  async resolve(text: string): Promise<ResolvedObject<S>> {
    const { kind } = this.spec;
    const ref = refOf(text);
    const canonical = formatDataRef(ref);
    const dataKey = this.spec.dataKey(canonical);
    switch (ref.kind) {
      case "app": {
        const declared = this.spec.declared(this.apps.spec(ref.app));
        const settings = declared[ref.name];
        if (!settings) {
          const names = Object.keys(declared).sort();
          throw new NotFoundError(
            `app '${ref.app}' declares no ${kind} '${ref.name}'; its ${kind}s: ${names.join(", ") || "(none)"}`,
          );
        }
        return { ref: canonical, dataKey, kind: "app", name: ref.name, app: ref.app, settings };
      }
      case "named": {
        const raw = await this.store.get(this.spec.recordKey(ref.name));
        if (raw === null)
          throw new NotFoundError(
            `${kind} '${ref.name}' does not exist: create it with kiln.${kind}('${ref.name}', { createIfMissing: true })`,
          );
        const record = JSON.parse(raw) as NamedRecord<S>;
        return {
          ref: canonical,
          dataKey,
          kind: "named",
          name: ref.name,
          settings: record.settings,
          createdAt: record.createdAt,
        };
      }
      case "ephemeral": {
        const record = await this.ephemerals.get(ref.id, kind);
        return {
          ref: canonical,
          dataKey,
          kind: "ephemeral",
          name: ref.id,
          settings: this.spec.ephemeralSettings(),
          createdAt: record.createdAt,
        };
      }
    }
  }

  /** Delete a named or ephemeral object with its data (a declared one goes with its app). */
  async delete(text: string): Promise<{ deleted: boolean }> {
    const parsed = refOf(text);
    switch (parsed.kind) {
      case "app":
        throw new InvalidError(
          `${this.spec.kind} ${text} is declared by app '${parsed.app}': remove it from the app's spec and redeploy to delete it`,
        );
      case "ephemeral":
        return { deleted: await this.ephemerals.delete(parsed.id) };
      case "named": {
        const existed = await this.store.delete(this.spec.recordKey(parsed.name));
        await this.spec.drop(this.store, this.spec.dataKey(text));
        return { deleted: existed };
      }
    }
  }
}

/** InvalidError unless `name` is a valid name for a named dict or queue. */
export function checkName(name: string, kind: DataKind): void {
  if (!RESOURCE_NAME_PATTERN.test(name)) {
    throw new InvalidError(
      `invalid ${kind} name ${JSON.stringify(name)}: use 1-64 letters, digits, "_" or "-", starting with a letter or "_"`,
    );
  }
}
