// Every transport, in headless Chromium against the real server: messages arrive in
// order, exactly once; a closed channel stops the client.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./harness");

let server, browser;
before(async () => {
  server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
  browser = await h.launch();
});
after(async () => {
  await browser.close();
  await server.stop();
});

for (const transport of ["ws", "sse", "stream", "iframe", "longpoll", "poll"]) {
  test(`${transport}: messages arrive in order, once each`, async () => {
    const channel = "e2e." + transport;
    await h.publish(server, channel, "before the page");
    const context = await browser.newContext();
    const page = await h.openPage(context, server.sub, server.sub,
      h.subscribeScript("", channel, { transport, since: 0, share: false, pollInterval: 200 }));
    await h.waitFor(() => page.evaluate(() => window.received.length === 1), "the retained message");
    for (let i = 1; i <= 5; i++) await h.publish(server, channel, "m" + i);
    await h.waitFor(() => page.evaluate(() => window.received.length >= 6), "six messages");
    const received = await page.evaluate(() => window.received);
    assert.deepEqual(received, [
      `${channel}:1:before the page`,
      ...[1, 2, 3, 4, 5].map((i) => `${channel}:${i + 1}:m${i}`)
    ]);
    assert.equal(await page.evaluate(() => window.sub.transport), transport);
    await context.close();
  });
}

test("a closed channel ends the subscription and its requests", async () => {
  // The channel exists before the page (GET /channels/... knows it), and the page
  // subscribes from now on: it must not get "before", and gets "x" on its held poll.
  await h.publish(server, "e2e.open", "before");
  const context = await browser.newContext();
  const page = await h.openPage(context, server.sub, server.sub,
    h.subscribeScript("", ["e2e.close", "e2e.open"], { transport: "longpoll", share: false }));
  await h.waitFor(async () => (await h.channelInfo(server, "e2e.open")).subscribers === 1, "held poll");
  await h.publish(server, "e2e.open", "x");
  await h.waitFor(() => page.evaluate(() => window.received.length === 1), "a message");
  assert.deepEqual(await page.evaluate(() => window.received), ["e2e.open:2:x"]);
  await h.closeChannel(server, "e2e.close");
  await h.waitFor(() => page.evaluate(() => window.events.some((e) => e.startsWith("closed:"))), "closed event");
  assert.equal(await page.evaluate(() => window.sub.state), "live", "one channel is still open");
  await h.closeChannel(server, "e2e.open");
  await h.waitFor(() => page.evaluate(() => window.sub.state === "ended"), "the end");
  const events = await page.evaluate(() => window.events);
  assert.ok(events.some((e) => e.startsWith("end:")), events.join());
  await h.waitFor(async () => (await h.channelInfo(server, "e2e.open")).subscribers === 0, "no request left");
  await context.close();
});

test("ws: publish() resolves with the id, on the one connection, and refusals reject", async () => {
  const own = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
    "--client-publish", "e2e.pub.*"]);
  const context = await browser.newContext();
  const page = await h.openPage(context, own.sub, own.sub,
    h.subscribeScript("", "e2e.pub.a", { transport: "ws", since: 0, share: false }));
  await h.waitFor(() => page.evaluate(() => window.sub.state === "live"), "live");
  const requestsBefore = (await (await fetch(own.admin + "/stats")).json()).requests;
  const ids = await page.evaluate(() => Promise.all([
    window.sub.publish("e2e.pub.a", "one"), window.sub.publish("e2e.pub.a", "two")]));
  assert.deepEqual(ids, [1, 2]);
  const refused = await page.evaluate(() => window.sub.publish("elsewhere", "x").then(
    () => "stored", (e) => e.code));
  assert.equal(refused, "forbidden");
  await h.waitFor(() => page.evaluate(() => window.received.length === 2), "both, to the publisher too");
  assert.deepEqual(await page.evaluate(() => window.received), ["e2e.pub.a:1:one", "e2e.pub.a:2:two"]);
  const stats = await (await fetch(own.admin + "/stats")).json();
  assert.equal(stats.client_publishes, 2, "over the WebSocket");
  assert.equal(stats.requests, requestsBefore, "no HTTP request: no POST");
  await context.close();
  await own.stop();
});

test("the client loads as an ES module too", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const url = server.sub + "/__module_test.html";
  await page.route(url, (route) => route.fulfill({
    contentType: "text/html",
    body: `<!DOCTYPE html><body><script type="module">
      import Halley from "/halley.mjs";
      window.received = [];
      Halley.subscribe("", "e2e.module", { since: 0, share: false })
        .on("message", (m) => window.received.push(m.data));
    </script></body>`
  }));
  await page.goto(url);
  await h.publish(server, "e2e.module", "from a module");
  await h.waitFor(() => page.evaluate(() => window.received.length === 1), "a message");
  assert.deepEqual(await page.evaluate(() => window.received), ["from a module"]);
  await context.close();
});
