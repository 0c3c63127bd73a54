/*! Halley client: no dependencies, no build step. A <script> sets `Halley`;
 * /halley.mjs is this file as an ES module; Node's `require` gets it for tests. */
(function (root, factory) {
  var Halley = factory(root);
  if (typeof module === "object" && module.exports) module.exports = Halley;
  else root.Halley = Halley;
})(typeof globalThis !== "undefined" ? globalThis : this, function (root) {
  "use strict";

  // Transports from best to plainest; `auto` walks this list.
  var ORDER = ["ws", "sse", "stream", "iframe", "longpoll", "poll"];
  var STREAMS = { ws: 1, sse: 1, stream: 1, iframe: 1 };
  // A POST /pub status as a WebSocket answer's `error`; ms a publish waits for its answer.
  var PUB_ERRORS = { 400: "bad_request", 403: "forbidden", 405: "forbidden", 409: "closed",
    413: "too_large", 429: "rate_limited" }, PUB_WAIT = 10000;
  var DEFAULTS = {
    transport: "auto", since: null, share: true, pollInterval: 10000, probeTimeout: 4000,
    minDelay: 500, maxDelay: 30000, maxFailures: 8, token: null
  };
  var nextId = 0;

  // ---- Pure logic (tested in Node)

  /** Back-off before retry `failures`: exponential, capped, jittered in the upper half. */
  function backoff(failures, o, random) {
    var cap = Math.min(o.maxDelay, o.minDelay * Math.pow(2, Math.max(0, failures - 1)));
    return Math.round(cap / 2 + (random || Math.random)() * cap / 2);
  }

  /** The last id seen per channel (null: not known yet), and which channels closed. */
  function Cursors(channels, since) {
    this.channels = channels;
    this.ids = {};
    this.closed = {};
    for (var i = 0; i < channels.length; i++) {
      this.ids[channels[i]] = since == null ? null : Array.isArray(since) ? since[i] : since;
    }
  }
  Cursors.prototype = {
    known: function () {
      for (var c in this.ids) if (this.ids[c] == null) return false;
      return true;
    },
    /** The cursor as the server writes it: `4,0`. */
    toString: function () {
      var ids = this.ids;
      return this.channels.map(function (c) { return ids[c] == null ? "" : ids[c]; }).join(",");
    },
    /** Fills unknown entries from a cursor the server sent (`4,0`). */
    learn: function (text) {
      var parts = String(text).split(",");
      for (var i = 0; i < this.channels.length; i++) {
        var c = this.channels[i];
        if (this.ids[c] == null && /^\d+$/.test(parts[i])) this.ids[c] = +parts[i];
      }
    },
    allClosed: function () {
      for (var i = 0; i < this.channels.length; i++) if (!this.closed[this.channels[i]]) return false;
      return true;
    },
    /** Applies a frame: message, gap, reset, closed, hb, dup, hole (an id missing
     * without a gap) or ignore. */
    apply: function (f) {
      if (f.hb) return { type: "hb" };
      var c = f.ch, cur = this.ids[c];
      if (!(c in this.ids) || this.closed[c]) return { type: "ignore" };
      if (f.gap) {
        this.ids[c] = f.gap[1];
        return { type: "gap", channel: c, from: f.gap[0], to: f.gap[1] };
      }
      if (f.reset != null) {
        this.ids[c] = f.reset;
        return { type: "reset", channel: c, id: f.reset };
      }
      if (cur != null && f.id <= cur) return { type: "dup" };
      if (cur != null && f.id > cur + 1) return { type: "hole", channel: c, expected: cur + 1, id: f.id };
      this.ids[c] = f.id;
      if (f.closed) {
        this.closed[c] = true;
        return { type: "closed", channel: c, id: f.id };
      }
      return { type: "message", channel: c, id: f.id, data: f.data };
    }
  };

  /** text/event-stream into [events, rest]; each has `data`, `id`, `retry`, `comment`. */
  function parseSse(text) {
    var events = [], blocks = text.replace(/\r\n?/g, "\n").split("\n\n");
    var rest = blocks.pop();
    blocks.forEach(function (block) {
      var event = {}, data = [];
      block.split("\n").forEach(function (line) {
        var at = line.indexOf(":");
        if (at === 0) { event.comment = true; return; }
        var field = at < 0 ? line : line.slice(0, at);
        var value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
        if (field === "data") data.push(value);
        else if (field === "id") event.id = value;
        else if (field === "retry" && /^\d+$/.test(value)) event.retry = +value;
      });
      if (data.length) event.data = data.join("\n");
      events.push(event);
    });
    return [events, rest];
  }

  /** Complete lines of NDJSON from `text` past `offset`; returns [lines, new offset]. */
  function lines(text, offset) {
    var out = [], end;
    while ((end = text.indexOf("\n", offset)) >= 0) {
      if (end > offset) out.push(text.slice(offset, end));
      offset = end + 1;
    }
    return [out, offset];
  }

  /** Seconds of a Retry-After header (delay form), in ms, or 0. */
  function retryAfter(value) {
    return /^\d+$/.test(value || "") ? value * 1000 : 0;
  }

  // ---- Transports
  // Each opens one request for `s` at `url`, reports through s.bytes(), s.frame(f),
  // s.cursor(text), s.retry(ms), s.done(status), s.fail(retryAfterMs), s.auth(expired),
  // and returns its abort. `ws` also sets s.send(text) and calls s.ack(answer).

  function xhr(s, url, headers, onText, onLoad) {
    var req = new XMLHttpRequest(), finished = false;
    req.open("GET", url);
    for (var h in headers) req.setRequestHeader(h, headers[h]);
    req.onprogress = function () { if (req.status === 200) onText(req.responseText); };
    req.onload = function () {
      finished = true;
      var wait = retryAfter(req.getResponseHeader("Retry-After"));
      if (req.status === 200 || req.status === 304) onLoad(req);
      else if (req.status === 204) s.done(204);
      else if (req.status === 401) s.auth();
      else s.fail(wait);
    };
    req.onerror = function () { finished = true; s.fail(0); };
    req.send();
    return function () { if (!finished) { finished = true; req.abort(); } };
  }

  var transports = {
    ws: function (s, url) {
      var sock = new WebSocket(url.replace(/^http/, "ws"), "halley.v1");
      sock.onopen = function () { s.bytes(); };
      sock.onmessage = function (e) {
        var f = JSON.parse(e.data);
        if (f.ack !== undefined) s.ack(f);
        else s.frame(f);
      };
      sock.onclose = function (e) {
        s.send = null;
        // All closed, the server stops, too slow a reader: clean, resume. Else a failure.
        if (e.code === 1000 || e.code === 1001 || e.code === 1008) s.done(200);
        else if (e.code === 4001) s.auth(1);
        else s.fail(0);
      };
      s.send = function (text) { return sock.readyState === 1 && (sock.send(text), true); };
      return function () {
        s.send = null;
        sock.onclose = sock.onmessage = null;
        sock.close();
      };
    },

    sse: function (s, url) {
      var ctrl = new AbortController(), decoder = new TextDecoder(), text = "";
      fetch(url, { signal: ctrl.signal, cache: "no-store" }).then(function (res) {
        if (res.status === 204) return s.done(204);
        if (res.status === 401) return s.auth();
        if (res.status !== 200 || !res.body) return s.fail(retryAfter(res.headers.get("Retry-After")));
        var reader = res.body.getReader();
        return (function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) return s.done(200);
            s.bytes();
            var parsed = parseSse(text + decoder.decode(chunk.value, { stream: true }));
            text = parsed[1];
            parsed[0].forEach(function (e) {
              if (e.retry != null) s.retry(e.retry);
              if (e.data) s.frame(JSON.parse(e.data));
              if (e.id) s.cursor(e.id);
            });
            return pump();
          });
        })();
      }).catch(function () { if (!ctrl.signal.aborted) s.fail(0); });
      return function () { ctrl.abort(); };
    },

    stream: function (s, url) {
      var offset = 0;
      function feed(text) {
        if (text.length) s.bytes();
        var got = lines(text, offset);
        offset = got[1];
        got[0].forEach(function (line) { s.frame(JSON.parse(line)); });
      }
      return xhr(s, url, {}, feed, function (req) { feed(req.responseText); s.done(200); });
    },

    iframe: function (s, url) {
      var name = "__halley" + nextId++, frame = document.createElement("iframe");
      root[name] = { push: function (f) { s.bytes(); s.frame(f); } };
      frame.style.display = "none";
      frame.onload = function () { s.done(200); };
      frame.src = url + "&callback=parent." + name + ".push";
      // Opened after load: a frame that never ends would keep the page "loading".
      function open() { document.body.appendChild(frame); }
      if (document.readyState === "complete") open();
      else root.addEventListener("load", open);
      return function () {
        root.removeEventListener("load", open);
        frame.onload = null;
        frame.remove();
        delete root[name];
      };
    },

    longpoll: function (s, url) {
      return xhr(s, url, {}, function () {}, function (req) {
        var answer = JSON.parse(req.responseText);
        s.bytes();
        answer.frames.forEach(s.frame);
        s.cursor(answer.cursor);
        s.done(200);
      });
    },

    poll: function (s, url) {
      var tag = s.cursors.known() ? { "If-None-Match": '"' + s.cursors + '"' } : {};
      return xhr(s, url, tag, function () {}, function (req) {
        s.bytes();
        if (req.status === 200) {
          var answer = JSON.parse(req.responseText);
          answer.frames.forEach(s.frame);
          s.cursor(answer.cursor);
        }
        s.done(req.status);
      });
    }
  };

  // ---- A subscription

  function Subscription(url, channels, options) {
    var o = {};
    for (var k in DEFAULTS) o[k] = options && options[k] != null ? options[k] : DEFAULTS[k];
    this.url = String(url || "").replace(/\/$/, "");
    this.channels = typeof channels === "string" ? channels.split(",") : channels.slice();
    this.options = o;
    this.cursors = new Cursors(this.channels, o.since);
    this.listeners = {};
    this.failures = 0;
    this.state = "connecting";
    this.candidates = o.transport === "auto" ? this._usable() : [o.transport];
    this.transport = this.candidates[0];
    this.worked = {};
    this.asks = 0;
    this.token = typeof o.token === "string" ? o.token : null;
    this.publishes = 0;
    this.pending = {};
    this.sent = {};
    this.tab = Math.random().toString(36).slice(2);
    var self = this;
    setTimeout(function () { self._share() || self._connect(); }, 0);
  }

  Subscription.prototype = {
    on: function (event, fn) {
      (this.listeners[event] = this.listeners[event] || []).push(fn);
      return this;
    },
    off: function (event, fn) {
      this.listeners[event] = (this.listeners[event] || []).filter(function (f) { return f !== fn; });
      return this;
    },
    emit: function (event, value) {
      (this.listeners[event] || []).slice().forEach(function (fn) { fn(value); });
    },

    /** Stops for good (a leader tab hands its connection to another tab). */
    close: function () {
      this._stop();
      if (this.state !== "ended" && this.state !== "failed") this._status("closed");
      if (this.channel) this.channel.close();
      if (this.releaseLock) this.releaseLock();
    },

    /** After `failed`: starts again from the cursor. */
    retry: function () {
      this.failures = 0;
      if (this.state === "failed") this._connect();
    },

    _usable: function () {
      var sameOrigin = !this.url || (root.location && this.url.indexOf(root.location.origin) === 0);
      return ORDER.filter(function (t) {
        if (t === "ws") return typeof WebSocket === "function";
        if (t === "sse") return typeof fetch === "function" && root.ReadableStream && root.TextDecoder;
        if (t === "stream") return typeof XMLHttpRequest === "function";
        if (t === "iframe") return sameOrigin && root.document;
        return true;
      });
    },

    _status: function (state, detail) {
      this.state = state;
      this.emit("status", { state: state, transport: this.transport, at: detail || null });
      if (this.leading) this.channel.postMessage({ status: state, transport: this.transport, at: detail || null });
    },

    _stop: function () {
      clearTimeout(this.timer);
      clearTimeout(this.probe);
      if (this.abort) this.abort();
      this.abort = null;
      this.link = null;
      this._giveUpPublishes();
    },

    /** A promise of the stored event's id, or an Error with a `code`. Over the
     * WebSocket if any, else POST; a follower tab asks the leader. */
    publish: function (channel, data) {
      var self = this;
      return new Promise(function (resolve, reject) {
        var ref = ++self.publishes;
        var timer = setTimeout(function () { self._settle(ref, { error: "unknown" }); }, PUB_WAIT);
        self.pending[ref] = { resolve: resolve, reject: reject, timer: timer };
        if (self.channel && !self.leading) {
          self.channel.postMessage({ publish: { tab: self.tab, ref: ref, channel: channel, data: String(data) } });
        } else {
          self._publish(channel, String(data), function (answer) { self._settle(ref, answer); });
        }
      });
    },

    /** Sends one publish; `done` gets its answer as the WebSocket gives it. */
    _publish: function (channel, data, done) {
      var link = this.link;
      if (link && link.send) {
        var ref = "r" + (++this.publishes);
        this.sent[ref] = done;
        if (link.send(JSON.stringify({ pub: channel, data: data, ref: ref }))) return;
        delete this.sent[ref];
      }
      fetch(this._origin() + "/pub/" + encodeURIComponent(channel), {
        method: "POST", body: data, headers: Object.assign({ "Content-Type": "text/plain;charset=UTF-8" },
          this.token ? { Authorization: "Bearer " + this.token } : {})
      }).then(function (res) {
        if (res.status === 201) return res.json().then(done);
        done({ error: PUB_ERRORS[res.status] || "unavailable" });
      }, function () { done({ error: "unknown" }); });
    },

    _origin: function () { return this.url || root.location.origin; },

    /** Whether the token is there and not past its `exp` (read, not verified). */
    _fresh: function () {
      var t = this.token;
      try {
        var exp = JSON.parse(atob(t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp;
        return !exp || exp * 1000 > Date.now();
      } catch (e) { return !!t; }
    },

    /** The socket went with publishes unanswered: their fate is unknown. */
    _giveUpPublishes: function () {
      var sent = this.sent;
      this.sent = {};
      for (var ref in sent) sent[ref]({ error: "unknown" });
    },

    _settle: function (ref, answer) {
      var p = this.pending[ref];
      if (!p) return;
      delete this.pending[ref];
      clearTimeout(p.timer);
      if (!answer.error) return p.resolve(answer.id);
      var error = new Error("publish: " + answer.error);
      error.code = answer.error;
      p.reject(error);
    },

    _connect: function () {
      this._stop();
      if (this.state === "ended") return;
      var self = this, t = this.transport, get = this.options.token;
      if (typeof get === "function" && !this._fresh()) {
        var ask = ++this.asks;
        return Promise.resolve().then(get).then(function (token) {
          if (ask !== self.asks || self.state === "closed") return;
          self.token = token;
          self._connect();
        }, function () { if (ask === self.asks) self._failed(0, false); });
      }
      // A stream cannot say where it starts: learn unknown cursors with one poll.
      if (!this.cursors.known() && STREAMS[t]) t = "poll";
      var url = this._url(t);
      var gotBytes = false, over = false;
      if (this.state !== "live") this._status("connecting");
      this.emit("request", t);
      var s = {
        cursors: this.cursors,
        bytes: function () {
          if (over || gotBytes) return;
          gotBytes = true;
          self.worked[t] = true;
          clearTimeout(self.probe);
          self.failures = 0;
          if (self.state !== "live" && t !== "poll") self._status("live");
        },
        frame: function (f) { if (!over) self._frame(f); },
        cursor: function (text) { if (!over) self.cursors.learn(text); },
        retry: function (ms) { self.sseRetry = ms; },
        done: function (status) {
          if (over) return;
          if (status !== 204 && !gotBytes) return s.fail(0);
          over = true;
          if (status === 204) return self._end();
          if (t === "poll" && self.transport === "poll") return self._nextPoll();
          self._connect();
        },
        fail: function (wait) { if (!over) { over = true; self._failed(wait, gotBytes); } },
        // The token was refused (a failure) or expired (resume at once): fetch another.
        auth: function (expired) { self.token = null; expired ? s.done(200) : s.fail(0); },
        ack: function (a) {
          var done = self.sent[a.ack];
          delete self.sent[a.ack];
          if (done) done(a);
        }
      };
      this.link = s;
      this.abort = transports[t](s, url);
      if (STREAMS[t]) {
        // A silent stream: a proxy holds it back. Fall back to long-polling.
        this.probe = setTimeout(function () {
          if (gotBytes || over) return;
          over = true;
          if (self.options.transport !== "auto") return self._failed(0, false);
          self.candidates = self.candidates.filter(function (c) { return !STREAMS[c]; });
          self._fallback();
        }, this.options.probeTimeout);
      }
    },

    _url: function (t) {
      return (t === "ws" ? this._origin() : this.url) + "/sub/" + this.channels.map(encodeURIComponent).join(",") + "?t=" + t +
        (this.cursors.known() ? "&since=" + this.cursors : "") +
        (this.token ? "&token=" + encodeURIComponent(this.token) : "");
    },

    /** A follower tab behind the leader's cursor polls once for what it lacks; the
     * leader's frames wait meanwhile, so none is taken for a hole. */
    _catchUp: function (leaderCursor) {
      var self = this, mine = this.cursors, theirs = String(leaderCursor).split(",");
      if (!mine.known()) return mine.learn(leaderCursor);
      var behind = mine.channels.some(function (c, i) { return +theirs[i] > mine.ids[c]; });
      if (!behind) return;
      this.waiting = [];
      function finish() {
        var frames = self.waiting || [];
        self.waiting = null;
        frames.forEach(function (f) { self._frame(f, true); });
      }
      transports.poll({
        cursors: { known: function () { return false; } },
        bytes: function () {}, retry: function () {}, cursor: function () {},
        frame: function (f) { self._frame(f, true); },
        done: finish, fail: finish
      }, this._url("poll"));
    },

    _nextPoll: function () {
      var self = this, at = Date.now() + this.options.pollInterval;
      this._status("live", at);
      this.timer = setTimeout(function () { self._connect(); }, this.options.pollInterval);
    },

    /** `auto`: on to the next usable transport. */
    _fallback: function () {
      var list = this.candidates;
      this.transport = list[list.indexOf(this.transport) + 1] || list[list.length - 1];
      this.failures = 0;
      this._connect();
    },

    _failed: function (wait, hadBytes) {
      this.failures++;
      // Failing twice without ever a byte through: the next transport. (One that
      // has worked is kept through a server's outage.)
      if (!hadBytes && !this.worked[this.transport] && this.failures >= 2 &&
          this.options.transport === "auto" &&
          this.candidates.indexOf(this.transport) < this.candidates.length - 1) {
        return this._fallback();
      }
      if (this.failures >= this.options.maxFailures) {
        this._stop();
        return this._status("failed");
      }
      var delay = Math.max(wait || 0, this.transport === "sse" && this.sseRetry || 0,
        backoff(this.failures, this.options));
      var self = this;
      this._status("backoff", Date.now() + delay);
      this.timer = setTimeout(function () { self._connect(); }, delay);
    },

    _frame: function (f, fromLeader) {
      var r = this.cursors.apply(f);
      if (this.leading && !fromLeader) this.channel.postMessage({ frame: f });
      if (r.type === "hole") {
        // An id is missing and no gap said so: start again from the cursor.
        if (!fromLeader) this._connect();
        return;
      }
      if (r.type === "message") this.emit("message", r);
      else if (r.type === "gap" || r.type === "reset" || r.type === "closed") this.emit(r.type, r);
      if (r.type === "closed" && this.cursors.allClosed()) this._end();
    },

    _end: function () {
      this._stop();
      if (this.state === "ended") return;
      this._status("ended");
      this.emit("end", { cursor: this.cursors.toString() });
      if (this.releaseLock) this.releaseLock();
    },

    /** One connection per browser: same-origin tabs on the same channels elect a
     * leader (Web Locks) that passes frames on (BroadcastChannel); when it goes,
     * another takes over from its own cursor. True when sharing. */
    _share: function () {
      var locks = root.navigator && root.navigator.locks;
      if (!this.options.share || !locks || typeof BroadcastChannel !== "function") return false;
      var self = this, key = "halley " + this.url + " " + this.channels.join(",");
      this.channel = new BroadcastChannel(key);
      this.channel.onmessage = function (e) {
        var m = e.data;
        if (self.leading) {
          if (m.hello) self.channel.postMessage({ cursor: self.cursors.toString(), status: self.state, transport: self.transport });
          if (m.publish) {
            var p = m.publish;
            self._publish(p.channel, p.data, function (answer) {
              self.channel.postMessage({ published: { tab: p.tab, ref: p.ref, answer: answer } });
            });
          }
          return;
        }
        if (m.published && m.published.tab === self.tab) self._settle(m.published.ref, m.published.answer);
        if (m.cursor && !self.caughtUp) {
          self.caughtUp = true;
          self._catchUp(m.cursor);
        }
        if (m.frame) {
          if (self.waiting) self.waiting.push(m.frame);
          else self._frame(m.frame, true);
        }
        if (m.status && self.state !== "ended") {
          self.transport = m.transport;
          self.state = m.status;
          self.emit("status", { state: m.status, transport: m.transport, at: m.at, shared: true });
        }
      };
      this.channel.postMessage({ hello: 1 });
      locks.request(key, function () {
        if (self.state === "ended" || self.state === "closed") return;
        self.leading = true;
        self._connect();
        return new Promise(function (release) { self.releaseLock = release; });
      });
      return true;
    }
  };

  // ---- The indicator

  var LABELS = {
    connecting: "connecting", live: "live", backoff: "reconnecting", failed: "failed",
    ended: "ended", closed: "stopped"
  };
  var STYLE = ".halley-indicator{display:inline-flex;align-items:center;gap:.4em;font:12px/1.4 system-ui,sans-serif;color:#444}" +
    ".halley-indicator i{width:.75em;height:.75em;border-radius:50%;background:#bbb;transition:box-shadow .3s}" +
    ".halley-indicator[data-state=live] i{background:#2a2}.halley-indicator[data-state=connecting] i{background:#e9b400}" +
    ".halley-indicator[data-state=backoff] i{background:#e77d00}.halley-indicator[data-state=failed] i{background:#d22}" +
    ".halley-indicator[data-flash] i{box-shadow:0 0 0 .3em #9cd3ff}.halley-indicator button{font:inherit}";

  /** Draws `sub`'s state into `element`: a dot, words (role=status), a flash per
   * request, countdowns, a retry button once failed. */
  function indicator(sub, element) {
    var doc = element.ownerDocument, dot = doc.createElement("i"), text = doc.createElement("span");
    var status = { state: sub.state }, ticker = null;
    if (!doc.getElementById("halley-style")) {
      var style = doc.createElement("style");
      style.id = "halley-style";
      style.textContent = STYLE;
      doc.head.appendChild(style);
    }
    element.classList.add("halley-indicator");
    element.setAttribute("role", "status");
    element.setAttribute("aria-live", "polite");
    dot.setAttribute("aria-hidden", "true");
    element.replaceChildren(dot, text);
    function draw() {
      var state = status.state, words = LABELS[state] || state;
      var seconds = status.at ? Math.max(0, Math.ceil((status.at - Date.now()) / 1000)) : null;
      if (state === "live" && seconds != null) words = "next poll in " + seconds + " s";
      else if (state === "backoff" && seconds != null) words = "reconnecting in " + seconds + " s";
      element.dataset.state = state;
      element.title = "Halley: " + words + (status.transport ? " (" + status.transport + ")" : "");
      text.textContent = words;
      if (state === "failed") {
        var button = doc.createElement("button");
        button.textContent = "retry";
        button.onclick = function () { sub.retry(); };
        text.append(" ", button);
      }
    }
    sub.on("status", function (s) {
      status = s;
      clearInterval(ticker);
      if (s.at) ticker = setInterval(draw, 1000);
      draw();
    });
    sub.on("request", function () {
      element.dataset.flash = "";
      setTimeout(function () { delete element.dataset.flash; }, 300);
    });
    draw();
    return element;
  }

  return {
    subscribe: function (url, channels, options) { return new Subscription(url, channels, options); },
    indicator: indicator,
    version: "0.1.0",
    // For tests of the pure logic.
    _internal: { backoff: backoff, Cursors: Cursors, parseSse: parseSse, lines: lines, retryAfter: retryAfter }
  };
});
