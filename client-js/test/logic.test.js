// Unit tests of halley.js's pure logic: cursors and frames, SSE and NDJSON parsing,
// back-off. Run with `node --test test/`.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const zlib = require("node:zlib");
const fs = require("node:fs");
const path = require("node:path");
const Halley = require("../halley.js");
const { Cursors, parseSse, lines, backoff, retryAfter } = Halley._internal;

test("cursors start from since, one for all or one each", () => {
  assert.equal(String(new Cursors(["a", "b"], 4)), "4,4");
  assert.equal(String(new Cursors(["a", "b"], [4, 0])), "4,0");
  const unknown = new Cursors(["a", "b"], null);
  assert.equal(unknown.known(), false);
  unknown.learn("7,3");
  assert.equal(unknown.known(), true);
  assert.equal(String(unknown), "7,3");
  unknown.learn("9,9");
  assert.equal(String(unknown), "7,3", "learn fills only what is unknown");
});

test("frames advance the cursor; duplicates are dropped; holes are caught", () => {
  const c = new Cursors(["a"], 1);
  assert.deepEqual(c.apply({ ch: "a", id: 2, data: "x" }), { type: "message", channel: "a", id: 2, data: "x" });
  assert.deepEqual(c.apply({ ch: "a", id: 2, data: "x" }), { type: "dup" });
  assert.deepEqual(c.apply({ ch: "a", id: 1, data: "old" }), { type: "dup" });
  assert.deepEqual(c.apply({ ch: "a", id: 5, data: "z" }), { type: "hole", channel: "a", expected: 3, id: 5 });
  assert.equal(String(c), "2", "a hole does not move the cursor");
  assert.deepEqual(c.apply({ hb: 1 }), { type: "hb" });
  assert.deepEqual(c.apply({ ch: "other", id: 1, data: "?" }), { type: "ignore" });
});

test("gap and reset move the cursor to what the server says", () => {
  const c = new Cursors(["a", "b"], [3, 50]);
  assert.deepEqual(c.apply({ ch: "a", gap: [4, 9] }), { type: "gap", channel: "a", from: 4, to: 9 });
  assert.deepEqual(c.apply({ ch: "a", id: 10, data: "after the gap" }).type, "message");
  assert.deepEqual(c.apply({ ch: "b", reset: 2 }), { type: "reset", channel: "b", id: 2 });
  assert.equal(String(c), "10,2");
  assert.equal(c.apply({ ch: "b", id: 3, data: "x" }).type, "message");
});

test("close markers close channels; the subscription is over when all are", () => {
  const c = new Cursors(["a", "b"], 0);
  assert.deepEqual(c.apply({ ch: "a", id: 1, closed: true }), { type: "closed", channel: "a", id: 1 });
  assert.equal(c.allClosed(), false);
  assert.deepEqual(c.apply({ ch: "a", id: 2, data: "late" }), { type: "ignore" });
  c.apply({ ch: "b", id: 1, closed: true });
  assert.equal(c.allClosed(), true);
});

test("SSE text splits into events, across chunk boundaries", () => {
  const wire = "retry: 2000\n\nid: 1\ndata: {\"ch\":\"a\",\"id\":1,\"data\":\"x\"}\n\n: hb\n\nid: 2\nda";
  const [events, rest] = parseSse(wire);
  assert.deepEqual(events, [
    { retry: 2000 },
    { id: "1", data: "{\"ch\":\"a\",\"id\":1,\"data\":\"x\"}" },
    { comment: true }
  ]);
  assert.equal(rest, "id: 2\nda");
  const [more] = parseSse(rest + "ta: {}\n\n");
  assert.deepEqual(more, [{ id: "2", data: "{}" }]);
  assert.deepEqual(parseSse("data: a\r\ndata: b\r\n\r\n")[0], [{ data: "a\nb" }]);
});

test("NDJSON lines are taken whole, the rest waits", () => {
  assert.deepEqual(lines("{\"hb\":1}\n{\"a\":", 0), [["{\"hb\":1}"], 9]);
  assert.deepEqual(lines("{\"hb\":1}\n{\"a\":1}\n", 9), [["{\"a\":1}"], 17]);
  assert.deepEqual(lines("\n\n", 0), [[], 2]);
});

test("back-off grows exponentially to its cap, with jitter in the upper half", () => {
  const o = { minDelay: 500, maxDelay: 30000 };
  assert.equal(backoff(1, o, () => 0), 250);
  assert.equal(backoff(1, o, () => 1), 500);
  assert.equal(backoff(3, o, () => 1), 2000);
  assert.equal(backoff(20, o, () => 1), 30000);
  assert.equal(backoff(20, o, () => 0), 15000);
  for (let i = 1; i < 12; i++) {
    const d = backoff(i, o);
    assert.ok(d >= Math.min(30000, 500 * 2 ** (i - 1)) / 2 && d <= 30000, `${i}: ${d}`);
  }
  assert.equal(retryAfter("3"), 3000);
  assert.equal(retryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
  assert.equal(retryAfter(null), 0);
});

test("the library is under 8 KB gzipped", () => {
  const source = fs.readFileSync(path.join(__dirname, "..", "halley.js"));
  const size = zlib.gzipSync(source, { level: 9 }).length;
  assert.ok(size < 8192, `${size} bytes gzipped`);
});
