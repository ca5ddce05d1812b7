// restart-manager's page: the allowlisted workloads, live, and the fleet's node reboots.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { services: new Map(), sets: new Map(), me: null, socket: null, retry: 1000, pending: null, fleetTimer: null };

const key = (s) => `${s.kind}/${s.namespace}/${s.name}`;
const apiPath = (s) => `/api/v1/service/${encodeURIComponent(s.kind)}/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.name)}`;
const PHASES = { idle: "Idle", restarting: "Restarting", progressing: "Progressing", complete: "Complete", failed: "Failed", timedOut: "Timed out", missing: "Missing" };

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

// A schedule in words: when it runs next, and how the last due time went.
function scheduleText(sc) {
  if (!sc) return "";
  let text = `Scheduled ${sc.cron}`;
  if (sc.next) text += `; next ${new Date(sc.next).toLocaleString()}`;
  if (sc.last) text += `; last ${new Date(sc.last.due).toLocaleString()} ${sc.last.state}${sc.last.state === "skipped" && sc.last.note ? ` (${sc.last.note.replace(/^.* skipped: /, "")})` : ""}`;
  return text;
}

function showSchedule(el, sc) {
  el.textContent = scheduleText(sc);
  el.hidden = !sc;
}

function notice(text) {
  const n = $("#notice");
  n.textContent = text || "";
  n.hidden = !text;
}

// The server's errors, said plainly.
function explain(err, s) {
  const who = err.lock ? err.lock.holder : "someone";
  switch (err.kind) {
    case "locked": return `${who} is already restarting ${s.name} (since ${new Date(err.lock.since).toLocaleTimeString()}). Try again when it has finished.`;
    case "paused": return `${s.name} is paused, so it can't be restarted. Resume it first (kubectl rollout resume).`;
    case "unsupported_strategy": return `${s.name} only replaces pods that are deleted by hand (OnDelete), so a restart would do nothing.`;
    case "forbidden": return `You are not allowed to do that for ${s.name}.`;
    case "not_allowlisted": return `${s.name} is not in the list of workloads that may be restarted.`;
    case "workload_not_found": return `${s.name} does not exist in the cluster any more.`;
    case "unauthenticated": return "Please sign in again.";
    case "cluster_unavailable": return "The Kubernetes API could not be reached. Try again in a moment.";
    case "set_running": return `${s.name} is running already. Wait for it to end, or cancel it.`;
    case "unknown_set": return `There is no restart set named ${s.name} any more.`;
    case "outside_window": return err.message;
    default: return err.message || "Something went wrong.";
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) showLogin();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body.message || response.statusText), body);
  return body;
}

function showLogin() {
  $("#login").hidden = false;
  $("#token").focus();
}

// --- workloads ---

function card(s) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.key = key(s);
  const id = key(s).replace(/[^a-zA-Z0-9]/g, "-");
  li.innerHTML = `
    <div class="head"><h3><span class="name"></span><small class="where"></small></h3><span class="phase"></span></div>
    <p class="desc muted"></p>
    <p class="windows muted" hidden></p>
    <p class="schedule muted" hidden></p>
    <div class="bar" role="progressbar" aria-label="Pods replaced"><span class="updated"></span><span class="available"></span></div>
    <p class="counts"></p>
    <p class="message"></p>
    <p class="lock"></p>
    <p class="last muted"></p>
    <div class="actions"><button type="button" class="restart primary" aria-describedby="why-${id}">Restart</button><button type="button" class="unlock" hidden>Break lock</button><span class="why" id="why-${id}"></span></div>`;
  $(".name", li).textContent = s.name;
  $(".where", li).textContent = `${s.kind} · ${s.namespace}`;
  $(".restart", li).addEventListener("click", () => ask(li.dataset.key, "restart"));
  $(".unlock", li).addEventListener("click", () => ask(li.dataset.key, "unlock"));
  return li;
}

function render(s) {
  const list = $("#workloads");
  let li = list.querySelector(`[data-key="${CSS.escape(key(s))}"]`);
  if (!li) { li = card(s); list.append(li); }
  const phase = s.exists ? s.phase : "missing";
  const p = $(".phase", li);
  p.dataset.phase = phase;
  p.textContent = PHASES[phase] || phase;
  const desc = $(".desc", li);
  desc.textContent = s.description || "";
  desc.hidden = !s.description;
  const windows = $(".windows", li);
  windows.textContent = s.windows && s.windows.length ? `Restarts only ${s.windows.join("; ")}` : "";
  windows.hidden = !(s.windows && s.windows.length);
  showSchedule($(".schedule", li), s.schedule);
  const desired = Math.max(s.desired, 1);
  $(".updated", li).style.width = `${Math.min(100, (100 * s.updated) / desired)}%`;
  $(".available", li).style.width = `${Math.min(100, (100 * Math.min(s.available, s.updated)) / desired)}%`;
  const bar = $(".bar", li);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", String(s.desired));
  bar.setAttribute("aria-valuenow", String(s.updated));
  $(".counts", li).textContent = s.exists ? `${s.updated}/${s.desired} updated · ${s.ready} ready · ${s.available} available` : "";
  $(".message", li).textContent = s.message;
  const lock = $(".lock", li);
  lock.hidden = !s.lock;
  lock.dataset.since = s.lock ? s.lock.since : "";
  lock.dataset.holder = s.lock ? s.lock.holder : "";
  lock.dataset.reason = s.lock && s.lock.reason ? s.lock.reason : "";
  const last = $(".last", li);
  const lr = s.lastRestart;
  last.dataset.at = lr ? lr.at : "";
  last.dataset.text = lr ? `by ${lr.by}${lr.outcome ? ` (${lr.outcome === "timedOut" ? "timed out" : lr.outcome})` : ""}${lr.reason ? `: ${lr.reason}` : ""}` : "";
  last.hidden = !lr;
  const button = $(".restart", li);
  const why = !s.exists ? "Not found in the cluster." : s.paused ? "Paused: resume it to restart." : s.lock ? `Locked by ${s.lock.holder}.` : "";
  button.disabled = Boolean(why);
  $(".why", li).textContent = why;
  // admin is null when the cluster's RBAC decides per workload: offer it, the server checks.
  $(".unlock", li).hidden = !(s.lock && state.me && state.me.admin !== false);
  tick(li);
}

// Ages move on their own.
function tick(li) {
  const lock = $(".lock", li);
  if (lock.dataset.since) {
    lock.textContent = `Locked by ${lock.dataset.holder} for ${ago(lock.dataset.since)}${lock.dataset.reason ? ` — “${lock.dataset.reason}”` : ""}`;
  }
  const last = $(".last", li);
  if (last.dataset.at) last.textContent = `Last restart ${ago(last.dataset.at)} ago ${last.dataset.text}`;
}

function snapshot(services) {
  const keep = new Set(services.map(key));
  for (const li of [...$("#workloads").children]) if (!keep.has(li.dataset.key)) li.remove();
  state.services = new Map(services.map((s) => [key(s), s]));
  services.forEach(render);
  $("#empty").hidden = services.length > 0;
}

// --- restart sets ---

const RUN = { running: "Running", cancelling: "Cancelling", complete: "Complete", failed: "Failed", cancelled: "Cancelled" };
const MEMBER = { pending: "pending", waiting: "waiting", restarting: "restarting", complete: "complete", failed: "failed", skipped: "skipped" };

function setCard(set) {
  const li = document.createElement("li");
  li.className = "card set";
  li.dataset.set = set.name;
  li.innerHTML = `
    <div class="head"><h3><span class="name"></span><small class="where"></small></h3><span class="phase"></span></div>
    <p class="desc muted"></p>
    <p class="schedule muted" hidden></p>
    <ol class="members"></ol>
    <p class="run muted"></p>
    <div class="actions"><button type="button" class="restart primary">Restart set</button><button type="button" class="cancel-run" hidden>Cancel run</button></div>`;
  $(".name", li).textContent = set.name;
  $(".restart", li).addEventListener("click", () => askSet(set.name, "restart"));
  $(".cancel-run", li).addEventListener("click", () => askSet(set.name, "cancel"));
  return li;
}

function renderSet(set) {
  const list = $("#sets");
  let li = list.querySelector(`[data-set="${CSS.escape(set.name)}"]`);
  if (!li) { li = setCard(set); list.append(li); }
  const run = set.run;
  $(".where", li).textContent = `${set.members.length} member${set.members.length === 1 ? "" : "s"} · ${set.concurrency} at once · on failure ${set.onFailure}`;
  const desc = $(".desc", li);
  desc.textContent = set.description || "";
  desc.hidden = !set.description;
  showSchedule($(".schedule", li), set.schedule);
  const phase = $(".phase", li);
  phase.dataset.phase = run ? run.state : "idle";
  phase.textContent = run ? RUN[run.state] || run.state : "Never run";
  const members = run ? run.members : set.members.map((w) => ({ workload: w, state: "pending" }));
  $(".members", li).replaceChildren(...members.map((m) => {
    const item = document.createElement("li");
    item.dataset.state = m.state;
    item.textContent = `${m.workload} — ${run ? MEMBER[m.state] || m.state : "not run yet"}${m.message ? `: ${m.message}` : ""}`;
    return item;
  }));
  $(".run", li).textContent = run ? `Started by ${run.by} at ${new Date(run.started).toLocaleString()}${run.reason ? ` — “${run.reason}”` : ""}${run.cancelledBy ? `; cancelled by ${run.cancelledBy}` : ""}` : "";
  $(".restart", li).disabled = set.running;
  $(".cancel-run", li).hidden = !(run && run.state === "running");
}

function setsSnapshot(sets) {
  const keep = new Set(sets.map((s) => s.name));
  for (const li of [...$("#sets").children]) if (!keep.has(li.dataset.set)) li.remove();
  state.sets = new Map(sets.map((s) => [s.name, s]));
  sets.forEach(renderSet);
  $("#view-sets").hidden = sets.length === 0 || location.hash === "#nodes";
}

function connect() {
  const live = $("#live");
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/service/status`;
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onopen = () => { live.textContent = "live"; live.classList.add("on"); state.retry = 1000; };
  socket.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "snapshot") { snapshot(msg.services); setsSnapshot(msg.sets || []); }
    if (msg.type === "set") { state.sets.set(msg.set.name, msg.set); renderSet(msg.set); }
    if (msg.type === "update") { state.services.set(key(msg.service), msg.service); render(msg.service); }
  };
  socket.onclose = () => {
    live.textContent = "reconnecting…";
    live.classList.remove("on");
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 30000);
  };
}

// --- confirmation ---

function askSet(name, action) {
  const set = state.sets.get(name);
  if (!set) return;
  state.pending = { set: name, action };
  const restart = action === "restart";
  $("#confirm-title").textContent = restart ? `Restart the set ${name}?` : `Cancel the run of ${name}?`;
  $("#confirm-text").textContent = restart
    ? `Its members will be restarted in this order, ${set.concurrency} at a time, each as kubectl rollout restart does: ${set.members.join(", ")}.`
    : "No further member will start; those restarting now finish.";
  $("#reason-label").firstChild.textContent = "Reason ";
  $("#reason-label").hidden = !restart;
  $("#reason").hidden = !restart;
  $("#reason").required = false;
  $("#reason").value = "";
  $("#confirm-button").textContent = restart ? "Restart set" : "Cancel run";
  $("#confirm-error").hidden = true;
  $("#confirm").showModal();
  (restart ? $("#reason") : $("#confirm-button")).focus();
}

function ask(k, action) {
  const s = state.services.get(k);
  if (!s) return;
  $("#reason-label").hidden = false;
  $("#reason").hidden = false;
  state.pending = { key: k, action };
  const restart = action === "restart";
  $("#confirm-title").textContent = restart ? `Restart ${s.name}?` : `Break the lock on ${s.name}?`;
  $("#confirm-text").textContent = restart
    ? `Every pod of ${s.kind} ${s.namespace}/${s.name} will be replaced, a few at a time, exactly as kubectl rollout restart does.`
    : `${s.lock ? s.lock.holder : "Someone"} is restarting it. Breaking the lock lets anyone restart it again at once.`;
  $("#reason-label").firstChild.textContent = restart ? "Reason " : "Reason (required) ";
  $("#reason").required = !restart;
  $("#reason").value = "";
  $("#confirm-button").textContent = restart ? "Restart" : "Break lock";
  $("#confirm-error").hidden = true;
  $("#confirm").showModal();
  $("#reason").focus();
}

async function confirmedSet(name, action) {
  const button = $("#confirm-button");
  button.disabled = true;
  try {
    const answer = await api(`/api/v1/sets/${encodeURIComponent(name)}/${action}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: action === "restart" ? JSON.stringify({ reason: $("#reason").value }) : "{}",
    });
    const set = action === "restart" ? answer : answer.set;
    if (set && set.name) { state.sets.set(set.name, set); renderSet(set); }
    $("#confirm").close();
    notice("");
  } catch (err) {
    const error = $("#confirm-error");
    error.textContent = explain(err, { name });
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

async function confirmed(e) {
  e.preventDefault();
  if (state.pending && state.pending.set) return confirmedSet(state.pending.set, state.pending.action);
  const { key: k, action } = state.pending || {};
  const s = state.services.get(k);
  if (!s) return;
  const button = $("#confirm-button");
  button.disabled = true;
  try {
    const updated = await api(`${apiPath(s)}/${action}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ reason: $("#reason").value }),
    });
    if (updated && updated.kind) { state.services.set(k, updated); render(updated); }
    $("#confirm").close();
    notice("");
    document.querySelector(`[data-key="${CSS.escape(k)}"] .restart`)?.focus();
  } catch (err) {
    const error = $("#confirm-error");
    error.textContent = explain(err, s);
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// --- node reboots ---

async function fleet() {
  try {
    const f = await api("/api/v1/fleet");
    const groups = $("#groups");
    groups.replaceChildren(...f.groups.map((g) => {
      const div = document.createElement("div");
      div.className = "card";
      const holders = g.holders.map((h) => `${h.node}, ${holderState(h)} (${ago(h.since)})`).join("; ") || "none";
      div.innerHTML = `<h3></h3><p class="slots"></p><p class="muted rate"></p><p class="muted holders"></p><p class="muted windows"></p><p class="error gates"></p>`;
      $("h3", div).textContent = g.name + (g.paused ? " — paused" : "");
      $(".slots", div).textContent = `${g.holders.length} of ${g.slots} slot${g.slots === 1 ? "" : "s"} in use`;
      $(".rate", div).textContent = rateText(g.rate);
      $(".rate", div).hidden = !g.rate;
      $(".holders", div).textContent = `Holders: ${holders}`;
      $(".windows", div).textContent = g.windows.length ? `Windows: ${g.windows.join("; ")}${g.inWindow ? " (open now)" : ""}` : "Any time";
      $(".gates", div).textContent = g.closedGates && g.closedGates.length ? `No new reboots while ${g.closedGates.join("; ")}` : "";
      $(".gates", div).hidden = !(g.closedGates && g.closedGates.length);
      return div;
    }));
    $("#nodes tbody").replaceChildren(...f.nodes.map((n) => {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[n.name], [n.optedOut !== undefined ? `${n.state}; kept from rebooting: ${n.optedOut || "no reason given"}` : n.state, `state-${n.state}`], [n.ready ? "yes" : "no"], [n.unschedulable ? (n.cordonedByUs ? "by us" : "by someone else") : "no"], [n.holdsSlotIn || ""]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "plan";
      button.textContent = "Plan";
      button.setAttribute("aria-label", `Plan the drain of ${n.name}`);
      button.addEventListener("click", () => showPlan(n.name));
      td.append(button);
      tr.append(td);
      return tr;
    }));
  } catch (err) {
    notice(`Could not load the node reboots: ${err.message}`);
  }
}

// A group's rate and where it stands, in words: "Rate: 1 of 3 reboots in the last 1h".
function rateText(r) {
  if (!r) return "";
  const s = r.perSeconds, per = s % 3600 === 0 ? `${s / 3600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`;
  const text = `Rate: ${r.granted} of ${r.reboots} reboot${r.reboots === 1 ? "" : "s"} in the last ${per}`;
  return r.nextGrantAt ? `${text}; the next can be granted at ${new Date(r.nextGrantAt).toLocaleString()}` : text;
}

// Where a slot holder is, in words: its drain's progress, or, once it said steady-state,
// what its slot still waits for before it is given back.
function holderState(h) {
  if (h.drain && h.phase === "draining") return h.drain.message.replace(`draining ${h.node}: `, "draining: ");
  if (h.phase === "recovering") {
    const waiting = h.waitingFor && h.waitingFor.length ? `waiting for ${h.waitingFor.join("; ")}` : "healthy, settling";
    return `recovering for ${ago(h.returnedAt || h.since)}: ${waiting}`;
  }
  return h.phase;
}

// What a drain of the node would do now, and whether it could finish: the same plan a
// reboot request is checked against before the cordon.
async function showPlan(node) {
  const dialog = $("#plan");
  $("#plan-title").textContent = `Drain plan for ${node}`;
  $("#plan-summary").textContent = "Planning…";
  $("#plan-summary").className = "";
  $("#plan-body").replaceChildren();
  if (!dialog.open) dialog.showModal();
  try {
    const p = await api(`/api/v1/fleet/nodes/${encodeURIComponent(node)}/plan`);
    $("#plan-summary").textContent = p.blocked
      ? `A reboot would be refused before the cordon: the drain could not finish. ${p.blocked}`
      : `The drain can finish: ${p.evict.length} pod${p.evict.length === 1 ? "" : "s"} to evict, about ${p.estimatedSeconds} s.`;
    $("#plan-summary").className = p.blocked ? "error" : "ok";
    const verdicts = { allows: "allows", waits: "waits for healthy pods", neverAllows: "never allows" };
    const stays = { daemonSet: "DaemonSet pod", mirror: "static pod", finished: "finished", toleratesCordon: "tolerates the cordon", drainRule: "a drain rule leaves it" };
    const sections = [
      ["Evict", ["Pod", "Grace", "Note"], p.evict.map((e) => [e.pod, `${e.graceSeconds}s`, [e.priority && `priority ${e.priority}`, e.unmanaged && "no controller", e.emptyDir && "emptyDir data lost"].filter(Boolean).join("; ")])],
      ["Wait for completion", ["Pod", "Evicted anyway after"], (p.wait || []).map((w) => [w.pod, `${w.limitSeconds}s`])],
      ["Stop the drain", ["Pod", "Why"], p.refuse.map((r) => [r.pod, r.reason === "emptyDir" ? "its emptyDir data would be lost" : "no controller would bring it back"])],
      ["Disruption budgets", ["Budget", "Pods here", "Allowed", "Healthy / wanted of", "Verdict"], p.budgets.map((b) => [b.budget, b.pods.join(", "), String(b.disruptionsAllowed), `${b.currentHealthy} / ${b.desiredHealthy} of ${b.expectedPods}`, verdicts[b.verdict] || b.verdict])],
      ["Stay on the node", ["Pod", "Why"], p.skip.map((s) => [s.pod, stays[s.reason] || s.reason])],
    ];
    for (const [title, headers, rows] of sections) {
      if (!rows.length) continue;
      const table = document.createElement("table");
      table.className = `plan-${title.split(" ")[0].toLowerCase()}`;
      const caption = document.createElement("caption");
      caption.textContent = title;
      const head = document.createElement("tr");
      for (const h of headers) {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = h;
        head.append(th);
      }
      const thead = document.createElement("thead");
      thead.append(head);
      const tbody = document.createElement("tbody");
      for (const row of rows) {
        const tr = document.createElement("tr");
        for (const cell of row) {
          const td = document.createElement("td");
          td.textContent = cell;
          tr.append(td);
        }
        tbody.append(tr);
      }
      table.append(caption, thead, tbody);
      $("#plan-body").append(table);
    }
  } catch (err) {
    $("#plan-summary").textContent = `Could not plan the drain of ${node}: ${err.message}`;
    $("#plan-summary").className = "error";
  }
}

// --- views ---

function route() {
  const nodes = location.hash === "#nodes";
  $("#view-workloads").hidden = nodes;
  $("#view-sets").hidden = nodes || state.sets.size === 0;
  $("#view-nodes").hidden = !nodes;
  $("#tab-workloads").toggleAttribute("aria-current", !nodes);
  $("#tab-nodes").toggleAttribute("aria-current", nodes);
  if (!nodes) $("#tab-workloads").setAttribute("aria-current", "page");
  if (nodes) $("#tab-nodes").setAttribute("aria-current", "page");
  clearInterval(state.fleetTimer);
  if (nodes) { fleet(); state.fleetTimer = setInterval(fleet, 3000); }
}

async function start() {
  try {
    state.me = await api("/api/v1/whoami");
    $("#who").textContent = `Signed in as ${state.me.user}`;
    $("#auth-off").hidden = state.me.authenticated !== false;
    $("#login").hidden = true;
    snapshot(await api("/api/v1/service"));
    setsSnapshot(await api("/api/v1/sets"));
    connect();
  } catch (err) {
    if (err.kind !== "unauthenticated") notice(`Could not load the workloads: ${err.message}`);
  }
}

$("#login").addEventListener("submit", async (e) => {
  e.preventDefault();
  // The server checks the token and keeps it in an HttpOnly cookie this script cannot read.
  try {
    await api("/api/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: $("#token").value }),
    });
    $("#token").value = "";
    start();
  } catch (err) {
    notice(`Could not sign in: ${err.message}`);
  }
});
$("#confirm-form").addEventListener("submit", confirmed);
$("#cancel").addEventListener("click", () => $("#confirm").close());
window.addEventListener("hashchange", route);
setInterval(() => document.querySelectorAll("#workloads .card").forEach(tick), 1000);
route();
start();
