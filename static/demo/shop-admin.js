// The staff view of the shop: users, all orders (with a status control), products. One
// role document, its changes pushed as patches; each table reads its own part through a
// computed, so a status change re-renders the orders only, a new price the products only.
import { effect, escapeHtml as esc, getSocket, liveDoc, updateItem } from "paintbrush";
import { byId, parts } from "./shop-parts.js";

const socket = getSocket();
const { doc } = liveDoc(socket, { patch: true });
const $ = (id) => document.getElementById(id);
const showError = (err) => { $("error").textContent = err.message; $("error").hidden = false; };
const STATUSES = ["pending", "paid", "shipped"];
const { users, orders, products } = parts(doc, "admin", ["users", "orders", "products"]);
const usernames = byId(users, "username");
const productNames = byId(products, "name");

effect(() => { $("conn").textContent = socket.connected.get() ? "live" : "reconnecting…"; });

effect(() => {
  const list = orders.get();
  if (!list) return;
  const names = usernames.get();
  const productName = productNames.get();
  $("orders").innerHTML = list.map((o) => `
    <tr data-id="${esc(String(o.id))}">
      <td>${esc(String(o.id))}</td><td class="customer">${esc(names.get(o.user) ?? "?")}</td>
      <td>${esc(productName.get(o.product) ?? "?")}</td><td>${esc(String(o.quantity))}</td>
      <td><select name="status" data-order="${esc(String(o.id))}">${STATUSES.map((s) =>
        `<option value="${s}"${s === o.status ? " selected" : ""}>${s}</option>`).join("")}</select></td>
    </tr>`).join("");
});

effect(() => {
  const list = users.get();
  if (!list) return;
  $("users").innerHTML = list.map((u) => `
    <tr data-id="${esc(String(u.id))}"><td>${esc(u.username)}</td><td>${esc(u.email)}</td><td>${u.is_staff ? "yes" : ""}</td></tr>`).join("");
});

effect(() => {
  const list = products.get();
  if (!list) return;
  $("products").innerHTML = list
    .map((p) => `<li data-id="${esc(String(p.id))}">${esc(p.name)} — $${esc(p.price)}</li>`).join("");
});

$("orders").addEventListener("change", (event) => {
  const select = event.target.closest("select[name=status]");
  if (select) updateItem("orders", select.dataset.order, { status: select.value }).catch(showError);
});
