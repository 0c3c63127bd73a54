// docs/examples/token-issuer.js against the real server: a site's login endpoint
// issues tokens that Halley accepts for the user's own channel and no other.
"use strict";
const { test } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("./harness");
const { issuer } = require("../../docs/examples/token-issuer.js");

test("the example login endpoint issues tokens Halley accepts, for the user's channel only", async () => {
  const secret = crypto.randomBytes(32).toString("hex");
  const keyFile = path.join(os.tmpdir(), `halley-issuer-${process.pid}.key`);
  fs.writeFileSync(keyFile, secret + "\n");
  const server = await h.startHalley(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
    "--token-key-file", keyFile]);
  const site = issuer(secret);
  await new Promise((r) => site.listen(0, "127.0.0.1", r));
  const siteUrl = `http://127.0.0.1:${site.address().port}`;
  try {
    assert.equal((await fetch(siteUrl + "/halley-token")).status, 401, "not signed in");
    const wrong = await fetch(siteUrl + "/login", { method: "POST", body: "user=ada&password=nope" });
    assert.equal(wrong.status, 401);
    const login = await fetch(siteUrl + "/login", { method: "POST", body: "user=ada&password=lovelace" });
    assert.equal(login.status, 204);
    const cookie = login.headers.get("set-cookie").split(";")[0];
    const token = await (await fetch(siteUrl + "/halley-token", { headers: { cookie } })).text();

    await h.publish(server, "user.ada", "for ada");
    const own = await fetch(`${server.sub}/sub/user.ada?t=poll&since=0`, {
      headers: { Authorization: "Bearer " + token }
    });
    assert.equal(own.status, 200);
    assert.equal((await own.json()).frames[0].data, "for ada");
    const other = await fetch(`${server.sub}/sub/user.bob?t=poll&token=${token}`);
    assert.equal(other.status, 403);
  } finally {
    site.close();
    await server.stop();
    fs.rmSync(keyFile, { force: true });
  }
});
