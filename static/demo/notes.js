// Notes are REST only: the page reads the list once and after its own writes.
import { createItem, listItems, removeItem } from "paintbrush";

const list = document.querySelector("#items");
const form = document.querySelector("#create");
const errorBox = document.querySelector("#error");

function show(err) {
  errorBox.textContent = err.message;
  errorBox.hidden = false;
}

async function load() {
  const notes = await listItems("notes");
  list.replaceChildren(...notes.map((note) => {
    const li = document.createElement("li");
    li.dataset.id = note.id;
    const title = document.createElement("strong");
    title.textContent = note.title;
    const body = document.createElement("p");
    body.textContent = note.body;
    const remove = document.createElement("button");
    remove.textContent = "Delete";
    remove.addEventListener("click", () => removeItem("notes", note.id).then(load, show));
    li.append(title, body, remove);
    return li;
  }));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await createItem("notes", { title: form.elements.title.value, body: form.elements.body.value });
    form.reset();
    errorBox.hidden = true;
    await load();
  } catch (err) {
    show(err);
  }
});

load().catch(show);
