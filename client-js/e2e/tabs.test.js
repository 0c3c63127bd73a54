// One connection per browser: three tabs of one origin share the leader tab's
// connection, all show every message, and another tab takes over when the leader
// closes.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./harness");

let server, browser;
before(async () => {
  server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
    "--client-publish", "tabs.*"]);
  browser = await h.launch();
});
after(async () => {
  await browser.close();
  await server.stop();
});

const subscribers = async () => (await h.channelInfo(server, "tabs"))?.subscribers;
const messages = (page) => page.evaluate(() => window.received.map((r) => r.split(":")[2]));

test("three tabs hold one connection and all show every message, also after the leader leaves", async () => {
  const context = await browser.newContext();
  const script = h.subscribeScript("", "tabs", { transport: "sse", since: 0, minDelay: 100 });
  const tabs = [];
  for (let i = 0; i < 3; i++) tabs.push(await h.openPage(context, server.sub, server.sub, script));
  await h.waitFor(async () => {
    const states = await Promise.all(tabs.map((t) => t.evaluate(() => window.sub.state)));
    return states.every((s) => s === "live");
  }, "every tab live");
  await h.publish(server, "tabs", "one");
  for (const tab of tabs) await h.waitFor(async () => (await messages(tab)).length === 1, "one in each tab");
  assert.equal(await subscribers(), 1, "one connection for three tabs");
  const leaders = await Promise.all(tabs.map((t) => t.evaluate(() => !!window.sub.leading)));
  assert.equal(leaders.filter(Boolean).length, 1, `one leader: ${leaders}`);

  const leader = tabs[leaders.indexOf(true)];
  const others = tabs.filter((t) => t !== leader);
  await leader.close();
  await h.waitFor(async () => {
    const now = await Promise.all(others.map((t) => t.evaluate(() => !!window.sub.leading)));
    return now.filter(Boolean).length === 1;
  }, "a new leader");
  await h.publish(server, "tabs", "two");
  await h.publish(server, "tabs", "three");
  for (const tab of others) {
    await h.waitFor(async () => (await messages(tab)).length === 3, "three in each tab");
    assert.deepEqual(await messages(tab), ["one", "two", "three"]);
  }
  await h.waitFor(async () => (await subscribers()) === 1, "still one connection");
  await context.close();
});

test("a tab opened later catches up on what it missed, without a connection of its own", async () => {
  const context = await browser.newContext();
  const script = h.subscribeScript("", "tabs.late", { transport: "sse", since: 0 });
  const first = await h.openPage(context, server.sub, server.sub, script);
  await h.waitFor(() => first.evaluate(() => window.sub.state === "live"), "the first tab live");
  for (const body of ["a", "b", "c"]) await h.publish(server, "tabs.late", body);
  await h.waitFor(async () => (await messages(first)).length === 3, "three in the first tab");
  const late = await h.openPage(context, server.sub, server.sub, script);
  await h.waitFor(async () => (await messages(late)).length === 3, "the late tab caught up");
  await h.publish(server, "tabs.late", "d");
  for (const tab of [first, late]) {
    await h.waitFor(async () => (await messages(tab)).length === 4, "four in each tab");
    assert.deepEqual(await messages(tab), ["a", "b", "c", "d"]);
  }
  assert.equal(await late.evaluate(() => !!window.sub.leading), false, "the late tab follows");
  assert.equal((await h.channelInfo(server, "tabs.late")).subscribers, 1);
  await context.close();
});

test("a follower tab publishes through the leader tab's connection", async () => {
  const context = await browser.newContext();
  const script = h.subscribeScript("", "tabs.pub", { since: 0, minDelay: 100 });
  const tabs = [];
  for (let i = 0; i < 2; i++) tabs.push(await h.openPage(context, server.sub, server.sub, script));
  await h.waitFor(async () => {
    const states = await Promise.all(tabs.map((t) => t.evaluate(() => window.sub.state)));
    return states.every((s) => s === "live");
  }, "both tabs live");
  const leading = await Promise.all(tabs.map((t) => t.evaluate(() => !!window.sub.leading)));
  const follower = tabs[leading.indexOf(false)], leader = tabs[leading.indexOf(true)];
  assert.equal(await leader.evaluate(() => window.sub.transport), "ws");
  const id = await follower.evaluate(() => window.sub.publish("tabs.pub", "from the follower"));
  assert.equal(id, 1);
  const refused = await follower.evaluate(() => window.sub.publish("nope", "x").then(() => "stored", (e) => e.code));
  assert.equal(refused, "forbidden");
  for (const tab of tabs) {
    await h.waitFor(async () => (await tab.evaluate(() => window.received.length)) === 1, "the message in each tab");
    assert.deepEqual(await tab.evaluate(() => window.received), ["tabs.pub:1:from the follower"]);
  }
  const stats = await (await fetch(server.admin + "/stats")).json();
  assert.equal(stats.client_publishes, 1, "over the leader's WebSocket");
  assert.equal((await h.channelInfo(server, "tabs.pub")).subscribers, 1, "one connection");
  await context.close();
});
