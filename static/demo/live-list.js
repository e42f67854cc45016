// A live list page (todos, checklists): one generic view over liveResource, so a new
// live resource with a title and a boolean needs no new JavaScript.
import {
  createItem, effect, getSocket, liveResource, removeItem, renderList, updateItem,
} from "paintbrush";

export function mountLiveList({ resource, flag, root }) {
  const socket = getSocket();
  const store = liveResource(socket, resource);
  const list = root.querySelector("#items");
  const form = root.querySelector("#create");
  const errorBox = root.querySelector("#error");

  const showError = (err) => {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  };

  effect(() => {
    root.querySelector("#conn").textContent = socket.connected.get() ? "live" : "reconnecting…";
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.elements.title;
    try {
      await createItem(resource, { title: input.value });
      input.value = "";
      errorBox.hidden = true;
    } catch (err) {
      showError(err);
    }
  });

  renderList(list, store.items, (item, id) => {
    const li = document.createElement("li");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = flag;
    const title = document.createElement("span");
    title.className = "title";
    const rename = document.createElement("button");
    rename.textContent = "Rename";
    rename.className = "rename";
    const remove = document.createElement("button");
    remove.textContent = "Delete";
    remove.className = "delete";
    li.append(box, title, rename, remove);

    // The inner effect: re-runs when this row changes, and only then.
    effect(() => {
      const value = item.get();
      box.checked = Boolean(value[flag]);
      title.textContent = value.title; // text, never HTML
      li.classList.toggle("checked", Boolean(value[flag]));
    });

    box.addEventListener("change", () => {
      updateItem(resource, id, { [flag]: box.checked }).catch(showError);
    });
    rename.addEventListener("click", () => {
      const value = window.prompt("New title", item.peek().title);
      if (value) updateItem(resource, id, { title: value }).catch(showError);
    });
    remove.addEventListener("click", () => {
      removeItem(resource, id).catch(showError);
    });
    return li;
  }, { sort: (a, b) => String(a.created_at).localeCompare(String(b.created_at)) });
}
