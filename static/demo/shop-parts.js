// What both shop pages read of their role document: each part through a computed, which
// keeps its value while a patch changes only other parts (patches share what they do not
// change), so an effect that renders one part runs only when that part changed.
import { computed } from "paintbrush";

/** One computed per named part of `doc`, undefined until a document of `role` arrived. */
export const parts = (doc, role, names) => Object.fromEntries(names.map((name) => [name, computed(() => {
  const d = doc.get();
  return d && d.role === role ? d[name] : undefined;
})]));

/** Each item's `field` by id, as one Map kept while none of them changed. */
export const byId = (list, field) => {
  let held = new Map();
  return computed(() => {
    const next = new Map((list.get() ?? []).map((item) => [item.id, item[field]]));
    const same = next.size === held.size && [...next].every(([id, value]) => held.get(id) === value);
    return same ? held : (held = next);
  });
};
