import { afterEach, describe, expect, it } from "vitest";
import { Dicts } from "../../runtime/agent/data/dicts.js";
import { DataObjects, type DataKindSpec } from "../../runtime/agent/data/objects.js";
import { Queues } from "../../runtime/agent/data/queues.js";
import { Ephemerals, type AppLookup } from "../../runtime/agent/data/refs.js";
import { keys } from "../../runtime/agent/inputs.js";
import { InvalidError, NotFoundError } from "../../runtime/errors.js";
import { compileAppSpec, type CompiledAppSpec } from "../../runtime/spec/index.js";
import { EmbeddedStore } from "../../runtime/store/embedded/index.js";

interface Settings {
  size: number;
}

/** A made-up kind over store lists, to see DataObjects use only what its spec gives it. */
const LISTS: DataKindSpec<Settings> = {
  kind: "dict",
  dataKey: (ref) => `data:${ref}`,
  recordKey: (name) => `record:${name}`,
  declared: (spec) =>
    Object.fromEntries(Object.keys(spec.dicts).map((name) => [name, { size: 1 }])),
  ephemeralSettings: () => ({ size: 0 }),
  drop: (store, key) => store.delete(key),
};

describe("DataObjects", () => {
  const stores: EmbeddedStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  async function setup(): Promise<{
    store: EmbeddedStore;
    objects: DataObjects<Settings>;
    ephemerals: Ephemerals;
  }> {
    const store = await EmbeddedStore.open();
    stores.push(store);
    const spec: CompiledAppSpec = compileAppSpec({
      name: "shop",
      functions: {},
      dicts: { carts: {} },
    });
    const apps: AppLookup = {
      spec(app) {
        if (app !== "shop") throw new NotFoundError(`no app '${app}'; deployed apps: shop`);
        return spec;
      },
    };
    const ephemerals = new Ephemerals(store);
    return { store, objects: new DataObjects(store, apps, ephemerals, LISTS), ephemerals };
  }

  it("resolves a declared object from the app's spec, or names what the app declares", async () => {
    const { objects } = await setup();
    expect(await objects.resolve("app:shop:carts")).toEqual({
      ref: "app:shop:carts",
      dataKey: "data:app:shop:carts",
      kind: "app",
      name: "carts",
      app: "shop",
      settings: { size: 1 },
    });
    await expect(objects.resolve("app:shop:nope")).rejects.toThrow(
      "app 'shop' declares no dict 'nope'; its dicts: carts",
    );
    await expect(objects.resolve("app:other:carts")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("creates a named object's record once, resolves it, deletes it with its data", async () => {
    const { store, objects } = await setup();
    await expect(objects.resolve("named:n")).rejects.toThrow(
      "dict 'n' does not exist: create it with kiln.dict('n', { createIfMissing: true })",
    );
    await objects.create("n", { size: 5 });
    await objects.create("n", { size: 9 });
    const resolved = await objects.resolve("named:n");
    expect(resolved).toMatchObject({ ref: "named:n", dataKey: "data:named:n", kind: "named" });
    expect(resolved.settings).toEqual({ size: 5 });
    expect(typeof resolved.createdAt).toBe("string");
    await store.set("data:named:n", "payload");
    expect(await objects.delete("named:n")).toEqual({ deleted: true });
    expect(await store.get("data:named:n")).toBeNull();
    expect(await store.get("record:n")).toBeNull();
    expect(await objects.delete("named:n")).toEqual({ deleted: false });
  });

  it("resolves a live ephemeral object of its kind, deletes it through Ephemerals", async () => {
    const { objects, ephemerals } = await setup();
    const { ref } = await ephemerals.create("dict");
    const resolved = await objects.resolve(ref);
    expect(resolved).toMatchObject({ ref, kind: "ephemeral", settings: { size: 0 } });
    const queue = await ephemerals.create("queue");
    await expect(objects.resolve(queue.ref)).rejects.toBeInstanceOf(NotFoundError);
    expect(await objects.delete(ref)).toEqual({ deleted: true });
    await expect(objects.resolve(ref)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("refuses to delete a declared object", async () => {
    const { objects } = await setup();
    await expect(objects.delete("app:shop:carts")).rejects.toThrow(
      "dict app:shop:carts is declared by app 'shop': remove it from the app's spec and redeploy to delete it",
    );
    await expect(objects.delete("app:shop:carts")).rejects.toBeInstanceOf(InvalidError);
  });

  it("dicts and queues keep their data where they did (a hash, a partition group)", async () => {
    const { store, ephemerals } = await setup();
    const apps: AppLookup = { spec: () => compileAppSpec({ name: "a", functions: {} }) };
    const dicts = new Dicts(store, apps, ephemerals);
    const queues = new Queues(store, apps, ephemerals);
    await dicts.lookup({ name: "d", createIfMissing: true });
    await queues.lookup({ name: "q", createIfMissing: true });
    await dicts.put("named:d", { key: "k", value: "v", skipIfExists: false });
    await queues.put("named:q", ["x"], undefined);
    expect(await store.hashLength(keys.dictHash("named:d"))).toBe(1);
    expect(await store.partitionLength(keys.queueGroup("named:q"), "")).toBe(1);
    expect(await dicts.delete("named:d")).toEqual({ deleted: true });
    expect(await queues.delete("named:q")).toEqual({ deleted: true });
    expect(await store.hashLength(keys.dictHash("named:d"))).toBe(0);
    expect(await store.partitionLength(keys.queueGroup("named:q"), "")).toBe(0);
    await expect(queues.info("named:q")).rejects.toThrow("queue 'q' does not exist");
  });
});
