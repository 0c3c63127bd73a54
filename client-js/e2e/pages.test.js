// The pages the server shows, and the indicator in each state. With
// HALLEY_SCREENSHOTS=1 the pages' screenshots are written to docs/img/.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const h = require("./harness");

let server, browser;
before(async () => {
  // As the README's first command starts it.
  server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
    "--client-publish", "chat.*"]);
  browser = await h.launch();
});
after(async () => {
  await browser.close();
  await server.stop();
});

async function screenshot(page, name) {
  if (process.env.HALLEY_SCREENSHOTS === "1") {
    await page.screenshot({ path: path.join(h.ROOT, "docs", "img", name + ".png") });
  }
}

test("an entry published from the console appears on the live blog", async () => {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const blog = await context.newPage();
  await blog.goto(server.sub + "/");
  await h.waitFor(() => blog.evaluate(() => document.querySelector(".halley-indicator").dataset.state === "live"), "live");
  const consolePage = await context.newPage();
  await consolePage.goto(server.admin + "/");
  await consolePage.fill("#entry", "The keynote begins: a new phone.");
  await consolePage.click("button[type=submit]");
  await h.waitFor(() => consolePage.evaluate(() => /Published as id 1/.test(document.getElementById("result").textContent)), "published");
  await h.waitFor(() => blog.evaluate(() => document.querySelectorAll("#entries li[data-id]").length === 1), "the entry");
  assert.match(await blog.textContent("#entries li[data-id]"), /The keynote begins: a new phone\./);
  await consolePage.fill("#entry", "It folds.");
  await consolePage.click("button[type=submit]");
  await h.waitFor(() => blog.evaluate(() => document.querySelectorAll("#entries li[data-id]").length === 2), "the second entry");
  assert.match(await blog.textContent("#entries li:first-child"), /It folds\./, "newest first");
  await h.waitFor(() => consolePage.evaluate(() => document.querySelector('[data-figure="subscribers"]').textContent === "1"), "figures");
  await screenshot(blog, "live-blog");
  await screenshot(consolePage, "console");
  consolePage.on("dialog", (d) => d.accept());
  await consolePage.click("#close");
  await h.waitFor(() => blog.evaluate(() => document.body.classList.contains("over")), "the event is over");
  await context.close();
});

test("the chat page shows several rooms on one connection", async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 480 } });
  const page = await context.newPage();
  await page.goto(server.sub + "/chat");
  await h.waitFor(() => page.evaluate(() => document.querySelector(".halley-indicator").dataset.state === "live"), "live");
  await h.publish(server, "chat.lobby", JSON.stringify({ from: "ada", text: "hello all" }));
  await h.publish(server, "chat.dev", JSON.stringify({ from: "linus", text: "the build is green" }));
  await h.publish(server, "chat.random", "plain text works too");
  await h.waitFor(() => page.evaluate(() => document.querySelectorAll("#rooms li").length === 3), "three lines");
  for (const room of ["chat.lobby", "chat.dev", "chat.random"]) {
    assert.equal((await h.channelInfo(server, room)).subscribers, 1, room);
  }
  const stats = await (await fetch(server.admin + "/stats")).json();
  assert.equal(stats.subscribers, 1, "one connection carries the three rooms");
  await screenshot(page, "chat");
  await context.close();
});

test("two browsers chat: what one sends, both see at once, each on one connection", async () => {
  const open = async (name) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.sub + "/chat");
    await h.waitFor(() => page.evaluate(() => document.querySelector(".halley-indicator").dataset.state === "live"), "live");
    await page.fill("#name", name);
    return { context, page };
  };
  const ada = await open("ada"), bob = await open("bob");
  const say = async (who, room, text) => {
    const input = `input[aria-label="message to ${room}"]`;
    await who.page.fill(input, text);
    await who.page.press(input, "Enter");
  };
  const lines = (who, room) => who.page.evaluate((r) => [...document.querySelectorAll("section")]
    .find((s) => s.querySelector("h2").textContent === "#" + r).querySelectorAll("li").length, room);
  const before = await lines(ada, "dev");
  await say(ada, "dev", "shipping at noon");
  await say(bob, "dev", "ack");
  for (const who of [ada, bob]) await h.waitFor(async () => (await lines(who, "dev")) === before + 2, "both lines");
  const text = await bob.page.evaluate(() => [...document.querySelectorAll("section")]
    .find((s) => s.querySelector("h2").textContent === "#dev").innerText);
  assert.match(text, /ada\s*shipping at noon[\s\S]*bob\s*ack/);
  const stats = await (await fetch(server.admin + "/stats")).json();
  assert.ok(stats.client_publishes >= 2, "published from the browsers");
  for (const who of [ada, bob]) {
    assert.equal(await who.page.evaluate(() => document.querySelector(".error").textContent), "");
    await who.context.close();
  }
});

test("the indicator shows connecting, live, flashes, countdowns, backing off, failed and ended", async () => {
  let own = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
  const sub = own.sub.replace("http://", ""), admin = own.admin.replace("http://", "");
  const context = await browser.newContext();
  const page = await h.openPage(context, own.sub, own.sub, `
    window.seen = [];
    var element = document.getElementById("indicator");
    new MutationObserver(function () {
      window.seen.push(element.dataset.state + "|" + ("flash" in element.dataset) + "|" + element.textContent);
    }).observe(element, { attributes: true, childList: true, subtree: true, characterData: true });
    window.sub = Halley.subscribe("", "ind", { transport: "sse", since: 0, share: false, minDelay: 1500, maxDelay: 1500, maxFailures: 3 });
    Halley.indicator(window.sub, element);
    window.poller = Halley.subscribe("", "ind2", { transport: "poll", since: 0, share: false, pollInterval: 5000 });
    Halley.indicator(window.poller, document.body.appendChild(document.createElement("span")));
  `);
  const seen = () => page.evaluate(() => window.seen);
  const has = async (pattern) => (await seen()).some((s) => pattern.test(s));
  await h.waitFor(() => has(/^connecting\|/), "connecting");
  await h.waitFor(() => has(/^live\|false\|live$/), "live");
  await h.waitFor(() => has(/\|true\|/), "a flash for the request");
  await h.waitFor(() => page.evaluate(() => /^next poll in \d s$/.test(document.body.lastElementChild.textContent)), "poll countdown");
  assert.equal(await page.getAttribute("#indicator", "role"), "status");
  assert.equal(await page.getAttribute("#indicator", "aria-live"), "polite");

  await h.stopChild(own.child, "SIGKILL");
  await h.waitFor(() => has(/^backoff\|.*\|reconnecting in \d s$/), "backing off with a countdown");
  await h.waitFor(() => has(/^failed\|.*\|failed retry$/), "failed", 20000);
  own = await h.startHalley(["--listen", sub, "--admin-listen", admin]);
  await page.click("#indicator button");
  await h.waitFor(() => page.evaluate(() => document.getElementById("indicator").dataset.state === "live"), "live after retry");
  await h.closeChannel(own, "ind");
  await h.waitFor(() => page.evaluate(() => document.getElementById("indicator").textContent === "ended"), "ended");
  await context.close();
  await own.stop();
});

test("the README's five lines put Halley on a page", async () => {
  const readme = require("node:fs").readFileSync(path.join(h.ROOT, "README.md"), "utf8");
  const section = readme.split("## Halley on a page, in five lines")[1];
  const snippet = /```html\n([\s\S]*?)```/.exec(section)[1];
  assert.equal(snippet.trimEnd().split("\n").length, 5, snippet);
  // A server of its own: the first test closed `live` on the shared one.
  const server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
  const context = await browser.newContext();
  const page = await h.openPage(context, null, server.sub,
    // `<\/` keeps the snippet's `</script>` from ending this inline script early.
    `document.write(${JSON.stringify(snippet.replaceAll("http://localhost:8080", server.sub)).replaceAll("</", "<\\/")});`);
  await h.publish(server, "live", "from the README");
  await h.waitFor(() => page.evaluate(() =>
    [...document.querySelectorAll("#entries li")].some((li) => li.textContent === "from the README")), "the entry");
  await context.close();
  await server.stop();
});
