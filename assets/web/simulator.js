// The demo's WhatsApp simulator: several customers side by side. Messages (and attached
// PDF or text documents, as base64) are posted to /demo/api/send (which signs a real
// webhook) and each chat polls /demo/api/chat.
// Customer and bot text is always inserted with textContent, never as HTML.
"use strict";

const people = [
  { wa_id: "31612345001", name: "Anna de Vries" },
  { wa_id: "31612345002", name: "Bram Jansen" },
  { wa_id: "31612345003", name: "Chloé Martin" },
];
let shown = 0;
const MAX_DOCUMENT = 5 * 1024 * 1024;
// WhatsApp's limit on a text message, in characters (not bytes, not UTF-16 units).
const MAX_TEXT_CHARS = 4096;

// The type a document is sent as, from its name; null for anything else.
function docType(name) {
  const lower = name.toLowerCase();
  return lower.endsWith(".pdf") ? "application/pdf" : lower.endsWith(".txt") ? "text/plain" : null;
}

// A file's bytes as base64 (without the data: URL's prefix).
function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).slice(String(reader.result).indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

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
  chat.setAttribute("aria-label", "Chat with " + person.name);
  const messages = chat.querySelector(".messages");
  const form = node.querySelector("form");
  const picker = form.elements.file;
  const attached = node.querySelector(".attached");
  const problem = node.querySelector(".problem");
  let file = null;
  function say(message) {
    problem.textContent = message || "";
    problem.hidden = !message;
  }
  function attach(chosen) {
    file = chosen;
    attached.hidden = !file;
    attached.querySelector(".file").textContent = file ? "📄 " + file.name : "";
    form.elements.text.placeholder = file ? "Add a caption (optional)" : "Type a message";
  }
  node.querySelector(".attach").addEventListener("click", () => picker.click());
  node.querySelector(".drop").addEventListener("click", () => attach(null));
  picker.addEventListener("change", () => {
    const chosen = picker.files[0];
    picker.value = "";
    if (!chosen) return;
    if (!docType(chosen.name)) return say("Only PDF and .txt files can be sent.");
    if (chosen.size > MAX_DOCUMENT) return say("That file is larger than 5 MB.");
    say("");
    attach(chosen);
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = form.elements.text;
    const text = input.value.trim();
    if (!text && !file) return;
    const chars = [...text].length;
    if (chars > MAX_TEXT_CHARS) {
      // Kept in the box, to shorten.
      return say("The message is " + chars + " characters long; WhatsApp allows at most " + MAX_TEXT_CHARS + ".");
    }
    const body = { wa_id: person.wa_id, name: person.name, text };
    if (file) {
      body.document = { filename: file.name, mime_type: docType(file.name), base64: await readBase64(file) };
    }
    const sentFile = file;
    input.value = "";
    attach(null);
    let r = null;
    try {
      r = await fetch("/demo/api/send", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (e) {
      r = null;
    }
    if (r && r.ok) {
      say("");
    } else {
      // Not sent: the text (and the document) come back, with why.
      if (!input.value) input.value = text;
      if (!file && sentFile) attach(sentFile);
      say(r ? ((await r.json().catch(() => ({}))).error || "Not sent (" + r.status + ").") : "Not sent: the server did not answer.");
    }
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
    messages.replaceChildren(...rows.map((m) => {
      const li = document.createElement("li");
      li.className = m.direction;
      li.dir = "auto";
      // A document shows as its name (and caption), as on the customer's phone.
      li.textContent = m.document ? "📄 " + (m.document.filename || "document") + (m.document.caption ? "\n" + m.document.caption : "") : m.text;
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
