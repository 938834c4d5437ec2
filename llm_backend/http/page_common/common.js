// What the service's two pages (the playground and the admin page) share: each calls this
// server's API with the key typed into its #key field and shows a failure in its #error box.
// Loaded before each page's own script (a classic script: its names are the page's globals).
"use strict";

const $ = (id) => document.getElementById(id);

function headers() {
  const result = { "content-type": "application/json" };
  const key = $("key").value.trim();
  if (key) result.authorization = "Bearer " + key;
  return result;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// OpenAI's error body gives the message and code; anything else, the status line.
async function apiError(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error;
  } catch (_) { /* not JSON */ }
  return { message: `${response.status} ${response.statusText}`, code: null };
}
