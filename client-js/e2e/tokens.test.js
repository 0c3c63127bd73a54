// Signed tokens in headless Chromium: a page whose tokens live two seconds fetches a
// new one from its own application whenever the server ends its subscription for an
// expired token, and gets every message exactly once across several expiries.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const h = require("./harness");

const SECRET = crypto.randomBytes(32).toString("hex");
let browser, keyFile;
before(async () => {
  browser = await h.launch();
  keyFile = path.join(os.tmpdir(), `halley-e2e-${process.pid}.key`);
  fs.writeFileSync(keyFile, SECRET);
});
after(async () => {
  await browser.close();
  fs.rmSync(keyFile, { force: true });
});

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** An HS256 JWT for `channels`, valid `seconds` from now. */
function mint(channels, seconds) {
  const body = b64({ alg: "HS256", typ: "JWT" }) + "." +
    b64({ exp: Math.floor(Date.now() / 1000) + seconds, channels });
  return body + "." + crypto.createHmac("sha256", SECRET).update(body).digest("base64url");
}

for (const transport of ["ws", "sse", "longpoll"]) {
  test(`${transport}: short-lived tokens are refreshed and nothing is lost or repeated`, async () => {
    const server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
      "--token-key-file", keyFile]);
    // The page's own application, which issues tokens (same origin as the page).
    let issued = 0;
    const app = http.createServer((req, res) => {
      issued++;
      res.writeHead(200, { "Content-Type": "text/plain", "Access-Control-Allow-Origin": "*" });
      res.end(mint(["private.*"], 2));
    });
    await new Promise((r) => app.listen(0, "127.0.0.1", r));
    const tokenUrl = `http://127.0.0.1:${app.address().port}/token`;
    const context = await browser.newContext();
    const page = await h.openPage(context, server.sub, server.sub, `
window.sub = Halley.subscribe("", "private.feed", { transport: ${JSON.stringify(transport)}, since: 0,
  share: false, minDelay: 100, maxDelay: 500,
  token: function () { return fetch(${JSON.stringify(tokenUrl)}).then(function (r) { return r.text(); }); } });
sub.on("message", function (m) { window.received.push(m.data); });`);
    const sent = [];
    for (let i = 0; i < 14; i++) {
      sent.push("m" + i);
      await h.publish(server, "private.feed", "m" + i);
      await new Promise((r) => setTimeout(r, 500)); // publishing over 7 s: several expiries
    }
    await h.waitFor(() => page.evaluate((n) => window.received.length >= n, sent.length), "every message");
    assert.deepEqual(await page.evaluate(() => window.received), sent);
    assert.ok(issued >= 3, `tokens issued: ${issued}`);
    if (transport !== "longpoll") {
      // A held stream is ended by the server at its token's exp (a long-poll, answered
      // every half second here, takes a fresh token before each request instead).
      const stats = await (await fetch(server.admin + "/stats")).json();
      assert.ok(stats.auth_subscriptions_expired >= 2, `expiries: ${stats.auth_subscriptions_expired}`);
    }
    await context.close();
    app.close();
    await server.stop();
  });
}
