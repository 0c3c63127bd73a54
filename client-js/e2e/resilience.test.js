// What the client survives, in headless Chromium: connections cut mid-stream, the
// server killed and restarted, a proxy that buffers streams. Every message ends up on
// the page exactly once.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./harness");

let browser;
before(async () => { browser = await h.launch(); });
after(async () => { await browser.close(); });

const FAST = { minDelay: 100, maxDelay: 1000, share: false };

function datas(page) {
  return page.evaluate(() => window.received.map((r) => r.split(":").slice(2).join(":")));
}

for (const transport of ["ws", "sse", "stream", "longpoll"]) {
  test(`${transport}: connections cut mid-stream lose and repeat nothing`, async () => {
    const server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
    const proxy = await h.cuttableProxy(server.sub);
    const context = await browser.newContext();
    const page = await h.openPage(context, null, server.sub,
      h.subscribeScript(proxy.url, "cut", Object.assign({ transport, since: 0 }, FAST)));
    const expected = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) {
        const body = `r${round}m${i}`;
        expected.push(body);
        await h.publish(server, "cut", body);
      }
      await h.waitFor(async () => (await datas(page)).length === expected.length, `${expected.length} messages`);
      proxy.cut();
    }
    // Published while the client is reconnecting.
    expected.push("during", "the", "outage");
    for (const body of expected.slice(-3)) await h.publish(server, "cut", body);
    await h.waitFor(async () => (await datas(page)).length >= expected.length, "every message");
    assert.deepEqual(await datas(page), expected);
    await context.close();
    proxy.close();
    await server.stop();
  });
}

for (const transport of ["auto", "ws"]) test(`${transport}: the server killed and restarted: the page ends with every message once`, async () => {
  let server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
  const sub = server.sub.replace("http://", ""), admin = server.admin.replace("http://", "");
  const context = await browser.newContext();
  const page = await h.openPage(context, server.sub, server.sub,
    h.subscribeScript("", "restart", Object.assign({ since: 0, transport }, FAST)));
  for (const body of ["a1", "a2", "a3"]) await h.publish(server, "restart", body);
  await h.waitFor(async () => (await datas(page)).length === 3, "first messages");
  await h.stopChild(server.child, "SIGKILL");
  await h.waitFor(() => page.evaluate(() => window.sub.state === "backoff"), "backing off");
  server = await h.startHalley(["--listen", sub, "--admin-listen", admin]);
  // Without --data-dir the new server starts from id 1: the client is told so by a
  // reset frame once it is back, and takes what is published from then on.
  await h.waitFor(async () => (await h.channelInfo(server, "restart"))?.subscribers === 1 ||
    (await page.evaluate(() => window.events.some((e) => e.startsWith("reset:")))), "back");
  await h.waitFor(() => page.evaluate(() => window.sub.state === "live"), "live again");
  for (const body of ["b1", "b2", "b3"]) await h.publish(server, "restart", body);
  await h.waitFor(async () => (await datas(page)).length >= 6, "every message");
  assert.deepEqual(await datas(page), ["a1", "a2", "a3", "b1", "b2", "b3"]);
  const events = await page.evaluate(() => window.events);
  assert.ok(events.some((e) => e === 'reset:{"type":"reset","channel":"restart","id":0}'), events.join());
  assert.equal(await page.evaluate(() => window.sub.transport), "ws", "kept through the outage");
  await context.close();
  await server.stop();
});

test("auto falls back to long-polling behind a proxy that refuses upgrades and buffers streams", async () => {
  const server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
  const proxy = await h.bufferingProxy(server.sub);
  const context = await browser.newContext();
  const page = await h.openPage(context, null, server.sub,
    h.subscribeScript(proxy.url, "buffered", Object.assign({ since: 0, probeTimeout: 1000 }, FAST)));
  await h.waitFor(() => page.evaluate(() => window.sub.transport === "longpoll"), "the fallback");
  for (const body of ["x", "y", "z"]) await h.publish(server, "buffered", body);
  await h.waitFor(async () => (await datas(page)).length === 3, "messages through the proxy");
  assert.deepEqual(await datas(page), ["x", "y", "z"]);
  const statuses = await page.evaluate(() => window.statuses);
  // The proxy holds the upgrade as it holds streams: silence, so every stream goes.
  assert.ok(statuses[0].endsWith("/ws"), `tried WebSocket first: ${statuses}`);
  await context.close();
  proxy.close();
  await server.stop();
});
