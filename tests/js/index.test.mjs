import { describe, it } from "node:test";
import assert from "node:assert/strict";

import * as paintbrush from "../../paintbrush/static/paintbrush/index.js";

describe("index", () => {
  it("should re-export the public API of every module, and nothing internal", () => {
    assert.deepEqual(Object.keys(paintbrush).sort(), [
      "ApiError", "LiveSocket", "PatchError", "applyPatch", "batch", "canonicalWhere", "computed", "configure",
      "connect", "createItem", "effect", "escapeHtml", "getSocket", "listItems", "liveDoc", "liveResource", "removeItem",
      "renderList", "root", "signal", "untracked", "updateItem",
    ]);
  });
});
