// A site's own login endpoint issuing Halley tokens: the pattern of
// docs/tokens-from-your-login.md, runnable with Node alone (no packages).
//
//   HALLEY_SECRET_FILE=halley.key PORT=3000 node docs/examples/token-issuer.js
//
// POST /login (user=..&password=..) checks the user against the site's own store (the
// one place to call LDAP instead: see `authenticate`) and sets a session cookie;
// GET /halley-token answers, for a signed-in user, a JWT that Halley verifies with the
// same secret (`--token-key-file`): the user's own channel to read, valid 5 minutes.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");

/** The site's users. With LDAP, bind as the user here instead (ldapjs's
 * `client.bind("uid=" + user + ",ou=people,dc=example,dc=com", password)`). */
const USERS = { ada: "lovelace", bob: "builder" };
function authenticate(user, password) {
  return Promise.resolve(Object.prototype.hasOwnProperty.call(USERS, user) && USERS[user] === password);
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** An HS256 JWT of `claims`, signed with `secret`. */
function sign(claims, secret) {
  const body = b64({ alg: "HS256", typ: "JWT" }) + "." + b64(claims);
  return body + "." + crypto.createHmac("sha256", secret).update(body).digest("base64url");
}

/** The token a signed-in `user` gets: their own channel, for five minutes. */
function tokenFor(user, secret, now = Date.now()) {
  const exp = Math.floor(now / 1000) + 300;
  return sign({ sub: user, exp, channels: ["user." + user], publish: [] }, secret);
}

function issuer(secret) {
  const sessions = new Map(); // session id -> user
  return http.createServer((req, res) => {
    const cookie = /(?:^|;\s*)sid=([\w-]+)/.exec(req.headers.cookie || "");
    const user = cookie && sessions.get(cookie[1]);
    if (req.method === "POST" && req.url === "/login") {
      let body = "";
      req.on("data", (chunk) => { body += chunk; });
      req.on("end", async () => {
        const form = new URLSearchParams(body);
        if (!(await authenticate(form.get("user"), form.get("password")))) {
          res.writeHead(401).end("wrong user or password\n");
          return;
        }
        const sid = crypto.randomUUID();
        sessions.set(sid, form.get("user"));
        res.writeHead(204, { "Set-Cookie": `sid=${sid}; HttpOnly; SameSite=Strict; Path=/` }).end();
      });
    } else if (req.method === "GET" && req.url === "/halley-token") {
      if (!user) {
        res.writeHead(401).end("sign in first\n");
        return;
      }
      res.writeHead(200, { "Content-Type": "text/plain", "Cache-Control": "no-store" });
      res.end(tokenFor(user, secret));
    } else {
      res.writeHead(404).end();
    }
  });
}

module.exports = { issuer, tokenFor, sign };

if (require.main === module) {
  const secret = fs.readFileSync(process.env.HALLEY_SECRET_FILE).toString().replace(/\r?\n$/, "");
  issuer(secret).listen(+(process.env.PORT || 3000), "127.0.0.1");
}
