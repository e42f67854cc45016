// The customer's shop page: every view reads the one document signal in an effect.
import { createItem, effect, escapeHtml as esc, getSocket, liveDoc, removeItem } from "paintbrush";

const socket = getSocket();
const { doc } = liveDoc(socket);
const $ = (id) => document.getElementById(id);
const showError = (err) => { $("error").textContent = err.message; $("error").hidden = false; };

effect(() => { $("conn").textContent = socket.connected.get() ? "live" : "reconnecting…"; });

effect(() => {
  const d = doc.get();
  if (!d || d.role !== "customer") return;
  $("me").textContent = d.user.username;
  $("products").innerHTML = d.products.map((p) => `
    <tr data-id="${esc(String(p.id))}">
      <td>${esc(p.name)}</td><td>$${esc(p.price)}</td>
      <td><input type="number" name="quantity" min="1" value="1" aria-label="Quantity">
          <button class="order" data-product="${esc(String(p.id))}">Order</button></td>
    </tr>`).join("");
  const names = new Map(d.products.map((p) => [p.id, p.name]));
  $("orders").innerHTML = d.orders.map((o) => `
    <tr data-id="${esc(String(o.id))}">
      <td>${esc(String(o.id))}</td><td>${esc(names.get(o.product) ?? "?")}</td>
      <td>${esc(String(o.quantity))}</td><td class="status">${esc(o.status)}</td>
      <td>${o.status === "pending" ? `<button class="cancel" data-order="${esc(String(o.id))}">Cancel</button>` : ""}</td>
    </tr>`).join("");
});

// Event delegation: the rows are re-rendered on every push, the listeners are not.
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
