// The demo's WhatsApp simulator: several customers side by side. Messages are posted to
// /demo/api/send (which signs a real webhook) and each chat polls /demo/api/chat.
// Customer and bot text is always inserted with textContent, never as HTML.
"use strict";

const people = [
  { wa_id: "31612345001", name: "Anna de Vries" },
  { wa_id: "31612345002", name: "Bram Jansen" },
  { wa_id: "31612345003", name: "Chloé Martin" },
];
let shown = 0;

function ticks(status) {
  switch (status) {
    case "read": case "played": return ["✓✓", "tick-read"];
    case "delivered": return ["✓✓", ""];
    case "sent": return ["✓", ""];
    case "failed": return ["failed", "failed"];
    default: return ["🕓", ""];
  }
}

function addPhone() {
  const person = shown < people.length ? people[shown]
    : { wa_id: "316123450" + String(shown + 1).padStart(2, "0"), name: "Customer " + (shown + 1) };
  shown += 1;
  const node = document.getElementById("phone").content.firstElementChild.cloneNode(true);
  node.querySelector(".name").textContent = person.name;
  node.querySelector(".num").textContent = "+" + person.wa_id;
  const chat = node.querySelector(".chat");
  const form = node.querySelector("form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = form.elements.text;
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await fetch("/demo/api/send", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ wa_id: person.wa_id, name: person.name, text }),
    });
    refresh();
  });
  let last = "";
  async function refresh() {
    const r = await fetch("/demo/api/chat?wa_id=" + encodeURIComponent(person.wa_id));
    if (!r.ok) return;
    const rows = await r.json();
    const key = JSON.stringify(rows);
    if (key === last) return;
    last = key;
    chat.replaceChildren(...rows.map((m) => {
      const li = document.createElement("li");
      li.className = m.direction;
      li.textContent = m.text;
      const meta = document.createElement("span");
      meta.className = "meta";
      const time = new Date(m.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      if (m.direction === "out") {
        const [mark, cls] = ticks(m.status);
        const t = document.createElement("span");
        t.textContent = " " + mark;
        if (cls) t.className = cls;
        meta.textContent = time;
        meta.appendChild(t);
      } else {
        meta.textContent = time;
      }
      li.appendChild(meta);
      return li;
    }));
    chat.scrollTop = chat.scrollHeight;
  }
  setInterval(refresh, 800);
  refresh();
  document.getElementById("phones").appendChild(node);
}

document.getElementById("add").addEventListener("click", addPhone);
for (let i = 0; i < 3; i++) addPhone();
fetch("/demo/api/info").then((r) => r.json()).then((i) => {
  document.getElementById("business").textContent = i.business_name;
  const list = document.getElementById("warnings");
  for (const w of i.warnings || []) {
    const li = document.createElement("li");
    li.textContent = w; // text, never HTML
    list.appendChild(li);
  }
  list.hidden = !(i.warnings || []).length;
});
