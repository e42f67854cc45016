// The staff view of the shop: users, all orders (with a status control), products.
import { effect, escapeHtml as esc, getSocket, liveDoc, updateItem } from "paintbrush";

const socket = getSocket();
const { doc } = liveDoc(socket);
const $ = (id) => document.getElementById(id);
const showError = (err) => { $("error").textContent = err.message; $("error").hidden = false; };
const STATUSES = ["pending", "paid", "shipped"];

effect(() => { $("conn").textContent = socket.connected.get() ? "live" : "reconnecting…"; });

effect(() => {
  const d = doc.get();
  if (!d || d.role !== "admin") return;
  const users = new Map(d.users.map((u) => [u.id, u.username]));
  const products = new Map(d.products.map((p) => [p.id, p.name]));
  $("orders").innerHTML = d.orders.map((o) => `
    <tr data-id="${esc(String(o.id))}">
      <td>${esc(String(o.id))}</td><td class="customer">${esc(users.get(o.user) ?? "?")}</td>
      <td>${esc(products.get(o.product) ?? "?")}</td><td>${esc(String(o.quantity))}</td>
      <td><select name="status" data-order="${esc(String(o.id))}">${STATUSES.map((s) =>
        `<option value="${s}"${s === o.status ? " selected" : ""}>${s}</option>`).join("")}</select></td>
    </tr>`).join("");
  $("users").innerHTML = d.users.map((u) => `
    <tr data-id="${esc(String(u.id))}"><td>${esc(u.username)}</td><td>${esc(u.email)}</td><td>${u.is_staff ? "yes" : ""}</td></tr>`).join("");
  $("products").innerHTML = d.products
    .map((p) => `<li data-id="${esc(String(p.id))}">${esc(p.name)} — $${esc(p.price)}</li>`).join("");
});

$("orders").addEventListener("change", (event) => {
  const select = event.target.closest("select[name=status]");
  if (select) updateItem("orders", select.dataset.order, { status: select.value }).catch(showError);
});
