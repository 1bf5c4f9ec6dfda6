// The web chat: plain JavaScript, no build step. It talks to the same
// OpenAI-compatible API as any client: GET /v1/models, then streamed
// POST /v1/chat/completions, read as server-sent events.
"use strict";

const $ = (id) => document.getElementById(id);
const history = [];          // the conversation sent with every request
let controller = null;       // aborts the running request (Stop button)

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.dataset.role = role;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  div.appendChild(body);
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

async function loadModels() {
  const select = $("model");
  try {
    const response = await fetch("/v1/models", { headers: headers() });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
    select.innerHTML = "";
    for (const model of data.data) {
      const option = document.createElement("option");
      option.value = model.id;
      option.textContent = model.parent ? `${model.id} (adapter of ${model.parent})` : model.id;
      select.appendChild(option);
    }
    $("status").textContent = `${data.data.length} model(s) available`;
  } catch (err) {
    $("status").textContent = "could not list models: " + err.message;
  }
}

// Parse an SSE byte stream into the JSON payloads of its `data:` lines.
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

async function send(text) {
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const bubble = addMessage("assistant", "");
  const body = bubble.querySelector(".text");
  const meta = document.createElement("span");
  meta.className = "meta";
  bubble.appendChild(meta);
  controller = new AbortController();
  setBusy(true);
  const started = performance.now();
  let firstTokenAt = null;
  let reply = "";
  let usage = null;
  let finish = null;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      signal: controller.signal,
      body: JSON.stringify({
        model: $("model").value,
        messages: history,
        temperature: Number($("temperature").value),
        max_tokens: Number($("max-tokens").value),
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    if (!response.ok) {
      const data = await response.json();
      throw new Error(data.error ? data.error.message : response.statusText);
    }
    for await (const chunk of events(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices || []) {
        const piece = choice.delta && choice.delta.content;
        if (piece) {
          if (firstTokenAt === null) firstTokenAt = performance.now();
          reply += piece;
          body.textContent = reply;
          $("log").scrollTop = $("log").scrollHeight;
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
  } catch (err) {
    if (err.name === "AbortError") {
      finish = "stopped";
    } else {
      bubble.classList.add("error");
      body.textContent = reply + (reply ? "\n" : "") + "error: " + err.message;
      finish = "error";
    }
  } finally {
    controller = null;
    setBusy(false);
  }
  const seconds = (performance.now() - started) / 1000;
  const decodeSeconds = firstTokenAt ? (performance.now() - firstTokenAt) / 1000 : seconds;
  const tokens = usage ? usage.completion_tokens : null;
  const parts = [`finish: ${finish}`];
  if (usage) parts.push(`prompt ${usage.prompt_tokens} + completion ${usage.completion_tokens} tokens`);
  if (tokens && decodeSeconds > 0) parts.push(`${(tokens / Math.max(decodeSeconds, 1e-3)).toFixed(1)} tokens/s`);
  parts.push(`${seconds.toFixed(2)} s`);
  meta.textContent = parts.join(" · ");
  bubble.dataset.finish = finish;
  if (reply) history.push({ role: "assistant", content: reply });
  $("status").textContent = "ready";
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  $("status").textContent = "generating…";
  send(text);
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("form").requestSubmit();
  }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("reset").addEventListener("click", () => {
  history.length = 0;
  $("log").innerHTML = "";
});
$("api-key").addEventListener("change", loadModels);
loadModels();
