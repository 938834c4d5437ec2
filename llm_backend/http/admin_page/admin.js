// The admin page: one page, no dependencies. It calls OpenAI's Admin API on this server as
// the official SDK's admin client would (GET /v1/organization/projects, ..., costs, audit
// logs), with the admin key typed in (kept in this browser's localStorage only).
// headers(), showError() and apiError() are the pages' shared script (page_common/common.js).
"use strict";

const STORED_KEY = "llm-backend.admin-key";
const UNSET = 2147483647; // a project's rate limit not set (docs/ADMIN.md)
const COLOURS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777"];
let selected = null;

async function api(path, options = {}) {
  const response = await fetch("/v1/organization" + path, { ...options, headers: headers() });
  if (!response.ok) throw new Error((await apiError(response)).message);
  return response.json();
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function rows(tbody, items, render) {
  tbody.replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    tr.append(...render(item));
    return tr;
  }));
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) : "never";
}

async function loadProjects() {
  const projects = (await api("/projects?limit=100&include_archived=true")).data;
  const tbody = $("projects");
  tbody.replaceChildren(...projects.map((project) => {
    const tr = document.createElement("tr");
    tr.className = "project" + (project.id === selected ? " selected" : "");
    tr.dataset.id = project.id;
    tr.append(cell(project.name, project.status === "archived" ? "archived" : ""), cell(project.id, "muted"), cell(project.status));
    tr.addEventListener("click", () => selectProject(project.id, project.name));
    return tr;
  }));
  return projects;
}

async function selectProject(id, name) {
  selected = id;
  document.querySelectorAll("tr.project").forEach((tr) => tr.classList.toggle("selected", tr.dataset.id === id));
  $("project-title").textContent = `${name} (${id})`;
  $("new-key").hidden = true;
  const [keys, limits] = await Promise.all([api(`/projects/${id}/api_keys?limit=100`), api(`/projects/${id}/rate_limits`)]);
  rows($("keys"), keys.data, (key) => [
    cell(key.redacted_value), cell(key.name),
    cell(key.owner.service_account ? key.owner.service_account.name : ""), cell(when(key.last_used_at)),
  ]);
  const set = limits.data.filter((limit) => Object.entries(limit).some(([name, value]) => name.startsWith("max_") || name.startsWith("batch_") ? value !== UNSET : false));
  rows($("limits"), set, (limit) => [
    cell(limit.model),
    cell(Object.entries(limit).filter(([name, value]) => (name.startsWith("max_") || name.startsWith("batch_")) && value !== UNSET).map(([name, value]) => `${name} ${value}`).join(", ")),
  ]);
  try {
    const limit = await api(`/projects/${id}/spend_limit`);
    $("spend-limit").textContent = `Hard spend limit: $${(limit.threshold_amount / 100).toFixed(2)} a month (${limit.enforcement.status})`;
  } catch (_) {
    $("spend-limit").textContent = "No hard spend limit.";
  }
}

// Spend per project per day as stacked bars (an SVG drawn here: no chart library).
async function loadChart(names) {
  const day = 86400;
  const start = Math.floor(Date.now() / 1000 / day) * day - 29 * day;
  const page = await api(`/costs?start_time=${start}&bucket_width=1d&group_by=project_id&limit=30`);
  const days = page.data.map((bucket) => {
    const byProject = {};
    bucket.results.forEach((result) => { byProject[result.project_id] = (byProject[result.project_id] || 0) + result.amount.value; });
    return { start: bucket.start_time, byProject };
  });
  const projects = [...new Set(days.flatMap((d) => Object.keys(d.byProject)))].sort();
  const top = Math.max(0.01, ...days.map((d) => Object.values(d.byProject).reduce((a, b) => a + b, 0)));
  const width = 640, height = 200, left = 48, barWidth = (width - left) / Math.max(days.length, 1);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 40}`);
  svg.setAttribute("width", "100%");
  const label = (x, y, text, anchor = "start") => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("text-anchor", anchor);
    t.textContent = text;
    svg.append(t);
  };
  label(left - 4, 10, "$" + top.toFixed(2), "end");
  label(left - 4, height, "$0", "end");
  days.forEach((d, index) => {
    let y = height;
    projects.forEach((project, colour) => {
      const amount = d.byProject[project] || 0;
      if (!amount) return;
      const h = (amount / top) * (height - 10);
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("class", "bar");
      rect.setAttribute("x", left + index * barWidth + 1); rect.setAttribute("y", y - h);
      rect.setAttribute("width", Math.max(barWidth - 2, 1)); rect.setAttribute("height", h);
      rect.setAttribute("fill", COLOURS[colour % COLOURS.length]);
      rect.dataset.project = project;
      rect.dataset.amount = amount;
      const title = document.createElementNS(ns, "title");
      title.textContent = `${names[project] || project}: $${amount.toFixed(4)} on ${when(d.start).slice(0, 10)}`;
      rect.append(title);
      svg.append(rect);
      y -= h;
    });
  });
  projects.forEach((project, colour) => {
    const x = left + (colour % 4) * 150, y = height + 18 + Math.floor(colour / 4) * 14;
    const swatch = document.createElementNS(ns, "rect");
    swatch.setAttribute("x", x); swatch.setAttribute("y", y - 8); swatch.setAttribute("width", 10); swatch.setAttribute("height", 10);
    swatch.setAttribute("fill", COLOURS[colour % COLOURS.length]);
    svg.append(swatch);
    label(x + 14, y, names[project] || project);
  });
  $("chart").replaceChildren(svg);
}

async function loadAlerts(projects) {
  const lists = await Promise.all([
    api("/spend_alerts?limit=100").then((page) => page.data.map((alert) => ({ ...alert, scope: "organization" }))),
    ...projects.filter((p) => p.status === "active").map((p) =>
      api(`/projects/${p.id}/spend_alerts?limit=100`).then((page) => page.data.map((alert) => ({ ...alert, scope: p.name })))),
  ]);
  rows($("alerts"), lists.flat(), (alert) => [
    cell(alert.scope), cell("$" + (alert.threshold_amount / 100).toFixed(2) + " / " + alert.interval),
    cell((alert.notification_channel.recipients || []).join(", ")),
  ]);
}

async function loadAudit(names) {
  const entries = (await api("/audit_logs?limit=50")).data;
  rows($("audit"), entries, (entry) => [
    cell(when(entry.effective_at)), cell(entry.type),
    cell(entry.actor && entry.actor.api_key ? entry.actor.api_key.id : "(the service)"),
    cell(entry.project ? names[entry.project.id] || entry.project.id : ""),
  ]);
}

async function refresh() {
  $("error").hidden = true;
  try {
    const projects = await loadProjects();
    const names = Object.fromEntries(projects.map((p) => [p.id, p.name]));
    await Promise.all([loadChart(names), loadAlerts(projects), loadAudit(names)]);
    if (selected) await selectProject(selected, names[selected]);
    document.body.dataset.loaded = String(Date.now());
  } catch (error) {
    showError(error.message);
  }
}

$("create-project").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const project = await api("/projects", { method: "POST", body: JSON.stringify({ name: $("project-name").value.trim() }) });
    $("project-name").value = "";
    selected = project.id;
    await refresh();
  } catch (error) {
    showError(error.message);
  }
});

$("create-account").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!selected) return showError("Select a project first.");
  try {
    const account = await api(`/projects/${selected}/service_accounts`, {
      method: "POST", body: JSON.stringify({ name: $("account-name").value.trim() }),
    });
    $("account-name").value = "";
    await refresh();
    // Shown this once: only a digest of it is kept.
    $("new-key").textContent = `The key of ${account.name} (shown once): ${account.api_key.value}`;
    $("new-key").dataset.key = account.api_key.value;
    $("new-key").hidden = false;
  } catch (error) {
    showError(error.message);
  }
});

$("key").value = localStorage.getItem(STORED_KEY) || "";
$("key").addEventListener("change", () => {
  localStorage.setItem(STORED_KEY, $("key").value.trim());
  refresh();
});
if ($("key").value) refresh();
else showError("Type an admin key above: the page calls the Admin API with it.");
