// The client's SSE transport in Node (it has fetch and streams) against a fake server
// that skips an id without a gap frame: the client must notice, drop the frame, and
// resume from its cursor; and it must wait the SSE `retry:` after a failure.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const Halley = require("../halley.js");

function fakeServer(handler) {
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url);
    handler(req, res, requests.length);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () =>
    resolve({ url: "http://127.0.0.1:" + server.address().port, requests, close: () => { server.closeAllConnections(); server.close(); } })));
}

function sse(res, text) {
  res.writeHead(200, { "Content-Type": "text/event-stream" });
  res.write(text);
}

/** Resolves as `promise` does, or rejects after `ms` saying what did not happen, so a
 * broken client fails its test instead of hanging the run. */
function within(promise, what, ms = 5000) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const frame = (id, data) => `id: ${id}\ndata: {"ch":"a","id":${id},"data":"${data}"}\n\n`;

test("an id missing without a gap frame makes the client resume from its cursor", async () => {
  const server = await fakeServer((req, res, n) => {
    if (n === 1) {
      sse(res, "retry: 50\n\n" + frame(1, "one") + frame(3, "three, but where is two?"));
    } else {
      sse(res, "retry: 50\n\n" + frame(2, "two") + frame(3, "three"));
    }
  });
  const sub = Halley.subscribe(server.url, "a", { transport: "sse", since: 0, share: false });
  const got = [];
  try {
    await within(new Promise((resolve) => sub.on("message", (m) => { got.push(m.id + ":" + m.data); if (got.length === 3) resolve(); })), "three messages");
  } finally {
    sub.close();
    server.close();
  }
  assert.deepEqual(got, ["1:one", "2:two", "3:three"]);
  assert.deepEqual(server.requests, ["/sub/a?t=sse&since=0", "/sub/a?t=sse&since=1"]);
});

test("after a failure the SSE retry: line sets the least wait", async () => {
  const server = await fakeServer((req, res, n) => {
    if (n === 1) {
      sse(res, "retry: 700\n\n" + frame(1, "one"));
      setTimeout(() => res.destroy(), 20); // cut, not ended
    } else {
      sse(res, "retry: 700\n\n" + frame(2, "two"));
    }
  });
  const sub = Halley.subscribe(server.url, "a", { transport: "sse", since: 0, share: false, minDelay: 1, maxDelay: 2 });
  const backoff = new Promise((resolve) => sub.on("status", (s) => { if (s.state === "backoff") resolve(s.at - Date.now()); }));
  const second = new Promise((resolve) => sub.on("message", (m) => { if (m.id === 2) resolve(); }));
  let wait;
  try {
    wait = await within(backoff, "backoff");
    await within(second, "second message");
  } finally {
    sub.close();
    server.close();
  }
  assert.ok(wait >= 600 && wait <= 700, `waited ${wait} ms`);
});

test("Retry-After on a 503 sets the least wait", async () => {
  const server = await fakeServer((req, res, n) => {
    if (n === 1) {
      res.writeHead(503, { "Retry-After": "2" });
      res.end("full");
    } else {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"cursor":"1","frames":[{"ch":"a","id":1,"data":"in"}]}');
    }
  });
  const sub = Halley.subscribe(server.url, "a", { transport: "sse", since: 0, share: false, minDelay: 1, maxDelay: 2 });
  let wait;
  try {
    wait = await within(new Promise((resolve) => sub.on("status", (s) => { if (s.state === "backoff") resolve(s.at - Date.now()); })), "backoff");
  } finally {
    sub.close();
    server.close();
  }
  assert.ok(wait >= 1900 && wait <= 2000, `waited ${wait} ms`);
});

test("failures in a row end in failed; retry() starts again", async () => {
  let up = false;
  const server = await fakeServer((req, res) => {
    if (!up) { res.writeHead(500); res.end(); return; }
    sse(res, "retry: 10\n\n" + frame(1, "back"));
  });
  const sub = Halley.subscribe(server.url, "a", { transport: "sse", since: 0, share: false, minDelay: 1, maxDelay: 5, maxFailures: 3 });
  try {
    await within(new Promise((resolve) => sub.on("status", (s) => { if (s.state === "failed") resolve(); })), "failed state");
    assert.equal(server.requests.length, 3);
    up = true;
    const back = new Promise((resolve) => sub.on("message", resolve));
    sub.retry();
    assert.equal((await within(back, "message after retry()")).data, "back");
  } finally {
    sub.close();
    server.close();
  }
});
