// Signed tokens in headless Chromium: a page whose tokens live two seconds fetches a
// new one from its own application whenever the server ends its subscription for an
// expired token, and gets every message exactly once across several expiries; the
// same page over https:// (and wss://), with a certificate the test makes and
// Chromium trusts by its key alone.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const os = require("node:os");
const path = require("node:path");
const h = require("./harness");

const SECRET = crypto.randomBytes(32).toString("hex");
let browser, tlsBrowser, keyFile, tlsDir, tls;
before(async () => {
  keyFile = path.join(os.tmpdir(), `halley-e2e-${process.pid}.key`);
  fs.writeFileSync(keyFile, SECRET);
  // An ECDSA P-256 certificate for localhost, made now (no key is committed).
  tlsDir = fs.mkdtempSync(path.join(os.tmpdir(), "halley-e2e-tls-"));
  tls = { cert: path.join(tlsDir, "cert.pem"), key: path.join(tlsDir, "key.pem") };
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", tls.key, "-out", tls.cert], { stdio: "ignore" });
  // Chromium trusts this certificate's key and no other error.
  const spki = new crypto.X509Certificate(fs.readFileSync(tls.cert)).publicKey
    .export({ type: "spki", format: "der" });
  const pin = crypto.createHash("sha256").update(spki).digest("base64");
  browser = await h.launch();
  tlsBrowser = await h.launch([`--ignore-certificate-errors-spki-list=${pin}`]);
});
after(async () => {
  await browser.close();
  await tlsBrowser.close();
  fs.rmSync(keyFile, { force: true });
  fs.rmSync(tlsDir, { recursive: true, force: true });
});

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** An HS256 JWT for `channels`, valid `seconds` from now. */
function mint(channels, seconds) {
  const body = b64({ alg: "HS256", typ: "JWT" }) + "." +
    b64({ exp: Math.floor(Date.now() / 1000) + seconds, channels });
  return body + "." + crypto.createHmac("sha256", SECRET).update(body).digest("base64url");
}

const CASES = [
  { transport: "ws", secure: false }, { transport: "sse", secure: false },
  { transport: "longpoll", secure: false }, { transport: "ws", secure: true },
  { transport: "sse", secure: true }
];
for (const { transport, secure } of CASES) {
  const name = secure ? `${transport} over https://` : transport;
  test(`${name}: short-lived tokens are refreshed and nothing is lost or repeated`, async () => {
    const tlsArgs = secure ? ["--tls-listen", "127.0.0.1:0", "--tls-cert", tls.cert, "--tls-key", tls.key] : [];
    const server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
      "--token-key-file", keyFile, ...tlsArgs]);
    // The page's own application, which issues tokens (over https:// too when the
    // page is, as a page's own application would).
    let issued = 0;
    const issue = (req, res) => {
      issued++;
      res.writeHead(200, { "Content-Type": "text/plain", "Access-Control-Allow-Origin": "*" });
      res.end(mint(["private.*"], 2));
    };
    const app = secure
      ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, issue)
      : http.createServer(issue);
    await new Promise((r) => app.listen(0, "127.0.0.1", r));
    const tokenUrl = `${secure ? "https://localhost" : "http://127.0.0.1"}:${app.address().port}/token`;
    const origin = secure ? server.tlsSub : server.sub;
    const context = await (secure ? tlsBrowser : browser).newContext();
    const page = await h.openPage(context, origin, origin, `
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
    if (secure) {
      assert.equal(await page.evaluate(() => location.protocol), "https:");
      const stats = await (await fetch(server.admin + "/stats")).json();
      assert.ok(stats.tls_handshakes >= 1, `TLS handshakes: ${stats.tls_handshakes}`);
      assert.equal(stats.connections_accepted, stats.tls_handshakes,
        "every subscriber connection came over TLS");
    }
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
