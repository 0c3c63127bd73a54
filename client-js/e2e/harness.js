// Shared pieces of the browser tests: the real halley binary on loopback ports,
// headless Chromium driven by playwright-core, a TCP proxy that can cut every
// connection, and an HTTP proxy that buffers whole responses (as some proxies do).
"use strict";
const { spawn, execFileSync } = require("node:child_process");
const net = require("node:net");
const http = require("node:http");
const path = require("node:path");
const { chromium } = require("playwright-core");

const ROOT = path.join(__dirname, "..", "..");
const BINARY = process.env.HALLEY_BIN || path.join(ROOT, "target", "debug", "halley");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** The longest any test waits for anything. */
const WAIT_MS = 15000;

let built = false;
/** Builds the binary once per test process (a no-op when it is up to date): it embeds
 * halley.js, so a stale binary would test a stale client. */
function ensureBinary() {
  if (!built && !process.env.HALLEY_BIN) execFileSync("cargo", ["build", "--quiet"], { cwd: ROOT, stdio: "inherit" });
  built = true;
}

/** Starts halley with `args`; resolves with its addresses once it listens. */
function startHalley(args = []) {
  ensureBinary();
  const child = spawn(BINARY, ["--threads", "2", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error("halley did not start: " + log)), WAIT_MS);
    const tls = args.includes("--tls-listen");
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const match = /subscribers on (\S+) .*admin on (\S+)/.exec(log);
      const tlsMatch = /subscribers over TLS on (\S+)/.exec(log);
      if (match && (tlsMatch || !tls) && !child.started) {
        child.started = true;
        clearTimeout(timer);
        resolve({
          child,
          sub: "http://" + match[1],
          // The TLS port by the name its test certificate carries.
          tlsSub: tlsMatch ? "https://localhost:" + tlsMatch[1].split(":").pop() : null,
          admin: "http://" + match[2],
          stop: () => stopChild(child)
        });
      }
    });
    child.on("exit", (code) => { if (!child.started) reject(new Error(`halley exited ${code}: ${log}`)); });
  });
}

function stopChild(child, signal = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => { child.once("exit", resolve); child.kill(signal); });
}

async function publish(server, channel, body) {
  const res = await fetch(`${server.admin}/pub/${channel}`, { method: "POST", body });
  if (res.status !== 201) throw new Error(`publish: ${res.status} ${await res.text()}`);
  return (await res.json()).id;
}

async function closeChannel(server, channel) {
  const res = await fetch(`${server.admin}/close/${channel}`, { method: "POST" });
  return (await res.json()).id;
}

async function channelInfo(server, channel) {
  const res = await fetch(`${server.admin}/channels/${channel}`);
  return res.status === 200 ? res.json() : null;
}

/** Polls `condition` (async) until it is true, failing after WAIT_MS. */
async function waitFor(condition, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Launches Chromium; `extraArgs` are added to its command line. */
function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [...extraArgs, "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // Pages that Playwright fulfils have no address: Chromium counts them public
      // and bars their WebSockets to loopback (Local Network Access). A page served
      // by Halley itself is not barred.
      "--disable-features=LocalNetworkAccessChecks"]
  });
}

function pageHtml(clientFrom, script) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<span id="indicator"></span><ol id="log"></ol>
<script src="${clientFrom}/halley.js"></script>
<script>
window.received = []; window.statuses = []; window.events = [];
${script}
</script></body></html>`;
}

let pageServer = null;
const pages = new Map();
/** A loopback HTTP server for test pages of their own origin. (A page that Playwright
 * fulfils itself has no address, so Chromium's Local Network Access counts it public
 * and bars it from loopback servers other than its own origin.) */
function pageOrigin() {
  if (!pageServer) {
    pageServer = new Promise((resolve) => {
      const server = http.createServer((req, res) => {
        const html = pages.get(req.url);
        res.writeHead(html ? 200 : 404, { "Content-Type": "text/html; charset=utf-8" });
        res.end(html || "no such page");
      });
      server.unref();
      server.listen(0, "127.0.0.1", () => resolve("http://127.0.0.1:" + server.address().port));
    });
  }
  return pageServer;
}

/** Opens a test page that loads the client from `clientFrom` and runs `script`. With
 * `origin`, the page is served on that origin (same-origin with that server, which
 * the forever frame needs); without, from the harness's own loopback page server. */
async function openPage(context, origin, clientFrom, script) {
  const page = await context.newPage();
  const id = `/__test_${Math.random().toString(36).slice(2)}.html`;
  const html = pageHtml(clientFrom, script);
  let url;
  if (origin) {
    url = origin + id;
    await page.route(url, (route) => route.fulfill({ contentType: "text/html", body: html }));
  } else {
    pages.set(id, html);
    url = (await pageOrigin()) + id;
  }
  await page.goto(url);
  return page;
}

/** A script that subscribes `channels` at `url` with `options` and records
 * everything into window.received / window.statuses / window.events. */
function subscribeScript(url, channels, options) {
  return `
window.sub = Halley.subscribe(${JSON.stringify(url)}, ${JSON.stringify(channels)}, ${JSON.stringify(options)});
Halley.indicator(window.sub, document.getElementById("indicator"));
sub.on("message", function (m) { window.received.push(m.channel + ":" + m.id + ":" + m.data); });
sub.on("status", function (s) { window.statuses.push(s.state + "/" + s.transport); });
["gap", "reset", "closed", "end"].forEach(function (e) {
  sub.on(e, function (v) { window.events.push(e + ":" + JSON.stringify(v)); });
});`;
}

/** A TCP proxy on an ephemeral port to `target` (host:port); `cut()` drops every
 * connection it carries, as a network failure would. */
function cuttableProxy(target) {
  const [host, port] = target.replace("http://", "").split(":");
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(+port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: "http://127.0.0.1:" + server.address().port,
    cut: () => { for (const s of sockets) s.destroy(); },
    close: () => { for (const s of sockets) s.destroy(); server.close(); }
  })));
}

/** An HTTP proxy on an ephemeral port to `target` that holds every response until
 * it is complete, then sends it whole: streams never get through it. */
function bufferingProxy(target) {
  const upstreamUrl = new URL(target);
  const server = http.createServer((req, res) => {
    const upstream = http.request({
      host: upstreamUrl.hostname, port: upstreamUrl.port, path: req.url, method: req.method,
      headers: Object.assign({}, req.headers, { host: upstreamUrl.host })
    }, (up) => {
      const chunks = [];
      up.on("data", (c) => chunks.push(c));
      up.on("end", () => {
        const headers = Object.assign({}, up.headers);
        delete headers["transfer-encoding"];
        const body = Buffer.concat(chunks);
        headers["content-length"] = body.length;
        res.writeHead(up.statusCode, headers);
        res.end(body);
      });
      up.on("error", () => res.destroy());
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: "http://127.0.0.1:" + server.address().port,
    close: () => { server.closeAllConnections(); server.close(); }
  })));
}

module.exports = {
  ROOT, WAIT_MS, startHalley, stopChild, publish, closeChannel, channelInfo, waitFor, launch,
  openPage, subscribeScript, cuttableProxy, bufferingProxy
};
