// The customer's shop page: one role document, its changes pushed as patches. Each view
// reads its own part of the document through a computed, which keeps its value while a
// patch changes only other parts: a new order does not re-render the catalog (and reset
// the quantities being typed there), a new price does not re-render the orders.
import { createItem, effect, escapeHtml as esc, getSocket, liveDoc, removeItem } from "paintbrush";
import { byId, parts } from "./shop-parts.js";

const socket = getSocket();
const { doc } = liveDoc(socket, { patch: true });
const $ = (id) => document.getElementById(id);
const showError = (err) => { $("error").textContent = err.message; $("error").hidden = false; };
const { user, products, orders } = parts(doc, "customer", ["user", "products", "orders"]);
const productNames = byId(products, "name"); // a price change leaves it as it is

effect(() => { $("conn").textContent = socket.connected.get() ? "live" : "reconnecting…"; });

effect(() => {
  const u = user.get();
  if (u) $("me").textContent = u.username;
});

effect(() => {
  const list = products.get();
  if (!list) return;
  $("products").innerHTML = list.map((p) => `
    <tr data-id="${esc(String(p.id))}">
      <td>${esc(p.name)}</td><td>$${esc(p.price)}</td>
      <td><input type="number" name="quantity" min="1" value="1" aria-label="Quantity">
          <button class="order" data-product="${esc(String(p.id))}">Order</button></td>
    </tr>`).join("");
});

effect(() => {
  const list = orders.get();
  if (!list) return;
  const names = productNames.get();
  $("orders").innerHTML = list.map((o) => `
    <tr data-id="${esc(String(o.id))}">
      <td>${esc(String(o.id))}</td><td>${esc(names.get(o.product) ?? "?")}</td>
      <td>${esc(String(o.quantity))}</td><td class="status">${esc(o.status)}</td>
      <td>${o.status === "pending" ? `<button class="cancel" data-order="${esc(String(o.id))}">Cancel</button>` : ""}</td>
    </tr>`).join("");
});

// Event delegation: the rows are re-rendered on every change of their part, the listeners are not.
$("products").addEventListener("click", (event) => {
  const button = event.target.closest("button.order");
  if (!button) return;
  const quantity = Number(button.parentElement.querySelector("input[name=quantity]").value);
  createItem("orders", { product: Number(button.dataset.product), quantity }).catch(showError);
});
$("orders").addEventListener("click", (event) => {
  const button = event.target.closest("button.cancel");
  if (button) removeItem("orders", button.dataset.order).catch(showError);
});
