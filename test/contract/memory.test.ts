/** The store contract against MemoryStore on a hand-driven clock (advance = exact fake time). */
import { MemoryStore } from "../../src/store/memory-store.ts";
import { ManualClock } from "../harness/clock.ts";
import { bufferStoreContract } from "./store-contract.ts";

bufferStoreContract("MemoryStore", async (settings) => {
  const clock = new ManualClock();
  const store = new MemoryStore({ settings, clock });
  return {
    store,
    advance: async (ms) => clock.advance(ms),
    cleanup: () => store.close(),
  };
});
