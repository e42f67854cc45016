// A chat room, the Django Channels tutorial's page on Paintbrush: the room's messages are
// one scoped live resource (docs/protocol.md, section 2b), so this page holds the last
// 50 messages of its room and receives that room's messages only.
import { computed, createItem, effect, getSocket, liveResource } from "paintbrush";

export function mountChatRoom({ room, root }) {
  const socket = getSocket();
  const messages = liveResource(socket, "messages", { where: { room }, last: 50 });
  const log = root.querySelector("#chat-log");
  const input = root.querySelector("#chat-message-input");
  const errorBox = root.querySelector("#error");

  // The messages in the room's order (created_at, then id), one per line. Times are
  // compared as instants: DRF writes "…:05Z" and "…:05.250000Z", which sort wrongly as text.
  const instant = (text) => {
    const micros = /\.(\d+)/.exec(text)?.[1] ?? "0";
    return Date.parse(text) * 1000 + (Number(micros.padEnd(6, "0").slice(0, 6)) % 1000);
  };
  const lines = computed(() =>
    [...messages.items.get().values()]
      .map((item) => item.get())
      .sort((a, b) => instant(a.created_at) - instant(b.created_at) || a.id - b.id)
      .map((message) => message.text),
  );
  effect(() => {
    log.value = lines.get().length ? `${lines.get().join("\n")}\n` : "";
    log.scrollTop = log.scrollHeight;
  });
  effect(() => {
    root.querySelector("#conn").textContent = socket.connected.get() ? "live" : "offline, reconnecting…";
  });
  effect(() => {
    const error = messages.error.get();
    if (error?.type === "closed") {
      errorBox.textContent = "You are no longer a member of this room.";
      errorBox.hidden = false;
      input.disabled = true;
    }
  });

  const send = async () => {
    const text = input.value;
    if (!text) return;
    try {
      await createItem("messages", { room, text });
      input.value = "";
      errorBox.hidden = true;
    } catch (err) {
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    }
  };
  // A private room's owner invites members by user name.
  const invite = root.querySelector("#invite");
  invite?.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await createItem("memberships", { room, username: invite.elements.username.value });
      invite.elements.username.value = "";
      errorBox.hidden = true;
    } catch (err) {
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    }
  });

  input.focus();
  input.addEventListener("keyup", (event) => {
    if (event.key === "Enter") send();
  });
  root.querySelector("#chat-message-submit").addEventListener("click", send);
}
