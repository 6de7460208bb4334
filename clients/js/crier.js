/*! crier.js: browser client for the crier push server. MIT licence.
 *
 * One file, no build step, no dependencies. Load it as a classic script
 * (`<script src="/crier.js">` defines `window.crier`), `require()` it, or
 * import `crier-client` (crier.mjs wraps this file).
 *
 *   const sub = crier.subscribe(base, ["news", "sport"], { onMessage(msg) {} });
 *   sub.close();
 *   await crier.publish(base, "news", "hello", { token });
 *
 * See README.md beside this file for the behaviour in detail: transports,
 * resume, reconnect backoff, fallback, 401/403 and publishing.
 */
(function (root, factory) {
  "use strict";
  if (typeof module === "object" && module && module.exports) {
    module.exports = factory(root);
  } else {
    root.crier = factory(root);
  }
})(
  typeof globalThis !== "undefined" ? globalThis : typeof self !== "undefined" ? self : this,
  function (root) {
    "use strict";

    var VERSION = "0.1.0";

    // Reconnect backoff: attempt n waits random(0, min(CAP, BASE * 2^n)) ms
    // ("full jitter"), so a fleet of clients dropped at once by a restart
    // spreads its reconnects instead of arriving in one wave. A connection
    // that opened resets n, so the first retry after a drop waits at most
    // BASE.
    var BACKOFF_BASE_MS = 1000;
    var BACKOFF_CAP_MS = 30000;
    // A WebSocket or EventSource that has not opened by then counts as
    // failed (a proxy may hold a WebSocket upgrade forever).
    var OPEN_TIMEOUT_MS = 10000;
    // A long-poll the server still holds after this long was accepted, so
    // the subscription is shown "open" without waiting for the first
    // answer (which may take the whole longpoll-timeout, 30 s by default).
    var LONGPOLL_OPEN_AFTER_MS = 1000;
    // The status probe after a failed open (see probeStatus) gives up then.
    var PROBE_TIMEOUT_MS = 5000;
    // How long a transport found to work is preferred for a base URL
    // before `auto` tries WebSocket first again.
    var REMEMBER_MS = 24 * 3600 * 1000;
    // WebSocket publishing: how long to wait for the server's echo, and
    // how long an unused publishing connection stays open.
    var PUBLISH_TIMEOUT_MS = 5000;
    var PUBLISH_IDLE_MS = 30000;

    var JSON_SUBPROTOCOL = "crier.json";
    var CHANNEL_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;
    var TRANSPORTS = ["ws", "sse", "lp"];
    var STORAGE_PREFIX = "crier.transport:";

    // ---- small pure helpers (exported as crier._internal for tests) ----

    /** Compares two decimal id strings: -1, 0 or 1. Ids outgrow a double
     * (they start at the server's start time in microseconds), so they are
     * compared by length, then lexicographically, never as Numbers. */
    function compareIds(a, b) {
      a = String(a).replace(/^0+(?=\d)/, "");
      b = String(b).replace(/^0+(?=\d)/, "");
      if (a.length !== b.length) return a.length < b.length ? -1 : 1;
      return a < b ? -1 : a > b ? 1 : 0;
    }

    /** Full-jitter exponential backoff for attempt n (0-based). */
    function backoffDelay(attempt, base, cap, random) {
      var ceiling = Math.min(cap, base * Math.pow(2, Math.min(attempt, 30)));
      return Math.floor((random || Math.random)() * ceiling);
    }

    function normalizeBase(base) {
      if (!base) {
        if (root.location && root.location.origin) return root.location.origin;
        throw new TypeError("crier: a base URL is needed outside a browser page");
      }
      return String(base).replace(/\/+$/, "");
    }

    /** Channel list as given (string "a/b", string "a" or array). */
    function channelList(channels) {
      var list = Array.isArray(channels) ? channels.slice() : String(channels).split("/");
      if (list.length === 0) throw new TypeError("crier: no channel given");
      list.forEach(function (ch) {
        if (!CHANNEL_RE.test(ch)) {
          throw new TypeError("crier: invalid channel id " + JSON.stringify(ch) +
            " (1-128 characters of A-Z a-z 0-9 _ . : @ -)");
        }
      });
      return list;
    }

    function buildQuery(params) {
      var parts = [];
      Object.keys(params).forEach(function (k) {
        var v = params[k];
        if (v !== undefined && v !== null && v !== "") {
          parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(v));
        }
      });
      return parts.length ? "?" + parts.join("&") : "";
    }

    function toWsUrl(httpUrl) {
      return httpUrl.replace(/^http/, "ws");
    }

    function base64UrlDecode(s) {
      s = s.replace(/-/g, "+").replace(/_/g, "/");
      while (s.length % 4) s += "=";
      var binary = root.atob ? root.atob(s) : Buffer.from(s, "base64").toString("binary");
      var bytes = new Uint8Array(binary.length);
      for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      return new TextDecoder().decode(bytes);
    }

    /** The `publish` patterns of a JWT's payload, or null. The signature
     * is not checked: the server does that; this only picks a route. */
    function tokenPublishPatterns(token) {
      if (typeof token !== "string") return null;
      var parts = token.split(".");
      if (parts.length < 2) return null;
      try {
        var payload = JSON.parse(base64UrlDecode(parts[1]));
        return Array.isArray(payload.publish) ? payload.publish : null;
      } catch (e) {
        return null;
      }
    }

    /** Whether a pattern list (`name` or `prefix*`) covers every channel
     * of "a/b". */
    function patternsAllow(patterns, channel) {
      if (!patterns) return false;
      return String(channel).split("/").every(function (ch) {
        return patterns.some(function (p) {
          if (typeof p !== "string") return false;
          return p.charAt(p.length - 1) === "*" ? ch.indexOf(p.slice(0, -1)) === 0 : p === ch;
        });
      });
    }

    function tokenAllowsPublish(token, channel) {
      return patternsAllow(tokenPublishPatterns(token), channel);
    }

    // ---- remembering which transport works, per base URL ----

    // localStorage survives tabs and reloads; some pages (sandboxed
    // iframes, privacy modes, Node) have none or throw on access, so every
    // use is guarded and falls back to memory for this page's lifetime.
    var memoryStore = {};
    function storage() {
      try {
        var s = root.localStorage;
        if (!s) return null;
        var probe = STORAGE_PREFIX + "probe";
        s.setItem(probe, "1");
        s.removeItem(probe);
        return s;
      } catch (e) {
        return null;
      }
    }

    function rememberTransport(base, transport) {
      var value = JSON.stringify({ transport: transport, at: Date.now() });
      memoryStore[base] = value;
      var s = storage();
      if (s) {
        try {
          s.setItem(STORAGE_PREFIX + base, value);
        } catch (e) {
          /* quota: memory is enough */
        }
      }
    }

    function recallTransport(base) {
      var s = storage();
      var raw = null;
      try {
        raw = (s && s.getItem(STORAGE_PREFIX + base)) || memoryStore[base] || null;
        var v = raw && JSON.parse(raw);
        if (v && TRANSPORTS.indexOf(v.transport) >= 0 && Date.now() - v.at < REMEMBER_MS) {
          return v.transport;
        }
      } catch (e) {
        /* unreadable entry: ignore */
      }
      return null;
    }

    function environment(opts) {
      return {
        WebSocket: opts.WebSocket || root.WebSocket,
        EventSource: opts.EventSource || root.EventSource,
        fetch: opts.fetch || (root.fetch && root.fetch.bind(root)),
      };
    }

    function reportAsync(err) {
      // A throwing callback must not break the transport; rethrow it where
      // the console (or the test runner) still sees it.
      setTimeout(function () {
        throw err;
      }, 0);
    }

    function envelopeToMessage(env) {
      var msg = {
        id: env.id,
        channel: env.channel === undefined ? null : env.channel,
        event: env.event || null,
        data: env.data,
      };
      if (env.channels) msg.channels = env.channels;
      if (env.content_type) msg.contentType = env.content_type;
      if (env.encoding) msg.encoding = env.encoding;
      return msg;
    }

    /** Learns the HTTP status of a URL that a WebSocket or EventSource
     * failed to open: browsers hide it from both APIs. A plain GET of the
     * same URL (same token) gets the same authentication answer; the body
     * is not read (aborting also ends an SSE stream the probe opened).
     * Resolves {status} or {status: null} when nothing answered (network
     * error, CORS refusal, timeout). */
    function probeStatus(fetchImpl, url) {
      if (!fetchImpl || typeof AbortController === "undefined") {
        return Promise.resolve({ status: null });
      }
      var ac = new AbortController();
      var timer = setTimeout(function () {
        ac.abort();
      }, PROBE_TIMEOUT_MS);
      return fetchImpl(url.replace(/^ws/, "http"), { signal: ac.signal, cache: "no-store" })
        .then(
          function (res) {
            return { status: res.status };
          },
          function () {
            return { status: null };
          }
        )
        .then(function (r) {
          clearTimeout(timer);
          ac.abort();
          return r;
        });
    }

    // ---- transports ----
    //
    // Each driver opens one connection and reports through `link`:
    //   link.opened()        the connection is up (shown as "open")
    //   link.message(msg)    a message with its id
    //   link.missed(info)    the server said history did not reach back
    //   link.position(id)    the server told the position (long-poll)
    //   link.failed(info)    the connection ended; info.opened says whether
    //                        it had worked (then a retry starts the backoff
    //                        afresh), info.status when an HTTP status is
    //                        known.
    // and returns {close()} that stops it without calling link.failed.

    function openWebSocket(url, link, env, sub) {
      var ws = new env.WebSocket(url, [JSON_SUBPROTOCOL]);
      var opened = false;
      ws.onopen = function () {
        opened = true;
        link.opened();
      };
      ws.onmessage = function (e) {
        var text = typeof e.data === "string" ? e.data : null;
        var env = null;
        if (text !== null && ws.protocol === JSON_SUBPROTOCOL) {
          try {
            env = JSON.parse(text);
          } catch (err) {
            env = null;
          }
        }
        if (!env) {
          // No envelope (a server that did not take crier.json): a bare
          // payload without an id, so it cannot be resumed or deduplicated.
          link.message({ id: null, channel: sub.channels.length === 1 ? sub.channels[0] : null, event: null, data: e.data });
        } else if (env.event === "missed" && env.id === undefined) {
          link.missed({ lastEventId: env.last_event_id === undefined ? null : env.last_event_id });
        } else if (env.id !== undefined) {
          link.message(envelopeToMessage(env));
        }
      };
      ws.onclose = function (e) {
        ws.onopen = ws.onmessage = ws.onclose = null;
        link.failed({ opened: opened, reason: "websocket closed (" + e.code + (e.reason ? " " + e.reason : "") + ")", code: e.code });
      };
      return {
        close: function () {
          ws.onopen = ws.onmessage = ws.onclose = null;
          try {
            ws.close(1000);
          } catch (e) {
            /* already closed */
          }
        },
      };
    }

    function openEventSource(url, link, env, sub) {
      var es = new env.EventSource(url);
      var opened = false;
      var single = sub.channels.length === 1 ? sub.channels[0] : null;
      function stop() {
        es.onopen = es.onerror = null;
        es.close();
      }
      function onEvent(e) {
        // SSE carries no channel name: known only for one channel.
        link.message({ id: e.lastEventId || null, channel: single, event: e.type === "message" ? null : e.type, data: e.data });
      }
      es.onopen = function () {
        opened = true;
        link.opened();
      };
      // EventSource hands named events only to listeners of that name, so
      // named events must be listed (options.events).
      es.addEventListener("message", onEvent);
      sub.events.forEach(function (name) {
        es.addEventListener(name, onEvent);
      });
      es.addEventListener("missed", function (e) {
        link.missed({ lastEventId: e.data || null });
      });
      es.addEventListener("channel_deleted", function (e) {
        stop();
        link.failed({ opened: opened, reason: "channel deleted (" + e.data + ")" });
      });
      // The browser would reconnect by itself, resending Last-Event-ID,
      // but with its own fixed delay and never after a non-200 answer.
      // Close it and reconnect ourselves with ?last_event_id= instead, so
      // every transport follows the same backoff and resume rules.
      es.onerror = function () {
        stop();
        link.failed({ opened: opened, reason: opened ? "event stream ended" : "event stream did not open" });
      };
      return { close: stop };
    }

    function openLongPoll(url, link, env, sub) {
      var stopped = false;
      var answered = false;
      var controller = null;
      var shownOpen = false;
      function showOpen() {
        if (!shownOpen && !stopped) {
          shownOpen = true;
          link.opened();
        }
      }
      function fail(info) {
        if (stopped) return;
        stopped = true;
        info.opened = answered;
        link.failed(info);
      }
      function poll() {
        if (stopped) return;
        controller = typeof AbortController !== "undefined" ? new AbortController() : null;
        var holdTimer = setTimeout(showOpen, LONGPOLL_OPEN_AFTER_MS);
        // The position goes in the query, not a Last-Event-ID header, so a
        // cross-origin poll stays a simple request (no CORS preflight).
        var pollUrl = sub._url("lp");
        env
          .fetch(pollUrl, { signal: controller && controller.signal, cache: "no-store" })
          .then(function (res) {
            if (res.status === 200) return res.json().then(function (body) { return { res: res, body: body }; });
            return { res: res, body: null };
          })
          .then(
            function (r) {
              clearTimeout(holdTimer);
              if (stopped) return;
              var status = r.res.status;
              if (status === 200 && r.body) {
                answered = true;
                showOpen();
                if (r.body.missed) link.missed({ lastEventId: sub.lastEventId });
                (r.body.messages || []).forEach(function (m) {
                  link.message(envelopeToMessage(m));
                });
                link.position(r.body.last_event_id);
                poll();
              } else if (status === 304) {
                answered = true;
                showOpen();
                link.position(r.res.headers.get("Last-Event-ID"));
                poll();
              } else {
                var retry = parseInt(r.res.headers.get("Retry-After") || "", 10);
                fail({
                  reason: "long-poll answered " + status,
                  status: status,
                  retryAfterMs: isNaN(retry) ? 0 : retry * 1000,
                });
              }
            },
            function (err) {
              clearTimeout(holdTimer);
              fail({ reason: "long-poll failed (" + (err && err.message) + ")" });
            }
          );
      }
      poll();
      return {
        close: function () {
          stopped = true;
          if (controller) controller.abort();
        },
      };
    }

    var DRIVERS = { ws: openWebSocket, sse: openEventSource, lp: openLongPoll };
    var PATHS = { ws: "/ws/", sse: "/ev/", lp: "/lp/" };

    // ---- the subscription ----

    function Subscription(base, channels, opts) {
      this.base = normalizeBase(base);
      this.channels = channelList(channels);
      this.events = (opts.events || []).slice();
      this.options = opts;
      var transport = opts.transport || "auto";
      if (transport !== "auto" && TRANSPORTS.indexOf(transport) < 0) {
        throw new TypeError("crier: transport must be auto, ws, sse or lp");
      }
      this._transportOption = transport;
      this._env = environment(opts);
      this._backoff = {
        base: (opts.backoff && opts.backoff.base) || BACKOFF_BASE_MS,
        cap: (opts.backoff && opts.backoff.cap) || BACKOFF_CAP_MS,
      };
      this._openTimeout = opts.openTimeout || OPEN_TIMEOUT_MS;
      this._lastId = opts.lastEventId ? String(opts.lastEventId) : null;
      this._state = null;
      this._everOpened = false;
      this._closed = false;
      this._attempt = 0;
      this._gen = 0;
      this._conn = null;
      this._timer = null;
      this._openTimer = null;
      this._worked = null; // the transport that last opened in auto mode
      this._retriedSame = false; // see _onFailed
      this._plan = this._makePlan();
      this._index = 0;
      this.transport = null;
      this.stats = { received: 0, duplicates: 0, connects: 0 };
      // Start on the next microtask, so `onState` and `onMessage` never run
      // before subscribe() has returned the subscription to its caller.
      var self = this;
      Promise.resolve().then(function () {
        if (self._closed) return;
        self._setState("connecting", { transport: self._plan[0] });
        self._connect();
      });
    }

    Object.defineProperty(Subscription.prototype, "lastEventId", {
      get: function () {
        return this._lastId;
      },
    });
    Object.defineProperty(Subscription.prototype, "state", {
      get: function () {
        return this._state;
      },
    });

    /** The transports to try, in order. `auto` starts with the one that
     * worked last (this page, else remembered for the base URL), then the
     * others in the order WebSocket, EventSource, long-poll; only those
     * this environment has. */
    Subscription.prototype._makePlan = function () {
      var env = this._env;
      var available = TRANSPORTS.filter(function (t) {
        return t === "ws" ? !!env.WebSocket : t === "sse" ? !!env.EventSource : !!env.fetch;
      });
      if (this._transportOption !== "auto") return [this._transportOption];
      if (available.length === 0) throw new Error("crier: no transport available here");
      var first = this._worked || (this.options.remember === false ? null : recallTransport(this.base));
      if (first && available.indexOf(first) >= 0) {
        return [first].concat(available.filter(function (t) {
          return t !== first;
        }));
      }
      return available;
    };

    /** The URL of `transport` from the current position. */
    Subscription.prototype._url = function (transport) {
      var history = this.options.history;
      var segments = this.channels.map(function (ch) {
        return history && !this._lastId ? ch + ".b" + history : ch;
      }, this);
      var url = this.base + PATHS[transport] + segments.join("/") +
        buildQuery({ last_event_id: this._lastId, token: this.options.token });
      return transport === "ws" ? toWsUrl(url) : url;
    };

    Subscription.prototype._setState = function (state, info) {
      this._state = state;
      if (this.options.onState) {
        try {
          this.options.onState(state, info || {});
        } catch (e) {
          reportAsync(e);
        }
      }
    };

    Subscription.prototype._connect = function () {
      if (this._closed) return;
      var self = this;
      var gen = ++this._gen;
      var transport = this._plan[this._index];
      var url = this._url(transport);
      var connOpen = false;
      this.transport = transport;
      this.stats.connects++;
      // Callbacks of a connection that was replaced or closed are ignored:
      // a closed WebSocket or EventSource may still fire a late event.
      function live() {
        return gen === self._gen && !self._closed;
      }
      var link = {
        opened: function () {
          if (!live() || connOpen) return;
          connOpen = true;
          self._onOpen(transport);
        },
        message: function (m) {
          if (live()) self._deliver(m);
        },
        missed: function (info) {
          if (!live() || !self.options.onMissed) return;
          info.transport = transport;
          try {
            self.options.onMissed(info);
          } catch (e) {
            reportAsync(e);
          }
        },
        position: function (id) {
          if (live()) self._advance(id);
        },
        failed: function (info) {
          if (!live()) return;
          self._gen++;
          self._onFailed(transport, url, info);
        },
      };
      clearTimeout(this._openTimer);
      this._openTimer = setTimeout(function () {
        if (!live() || connOpen) return;
        self._conn.close();
        link.failed({ opened: false, timedOut: true, reason: transport + " did not open within " + self._openTimeout + " ms" });
      }, this._openTimeout);
      try {
        this._conn = DRIVERS[transport](url, link, this._env, this);
      } catch (e) {
        // e.g. a WebSocket constructor refusing the URL: try the next one.
        this._conn = { close: function () {} };
        setTimeout(function () {
          link.failed({ opened: false, reason: String(e && e.message) });
        }, 0);
      }
    };

    Subscription.prototype._onOpen = function (transport) {
      clearTimeout(this._openTimer);
      this._attempt = 0;
      this._retriedSame = false;
      this._everOpened = true;
      if (this._transportOption === "auto") {
        this._worked = transport;
        if (this.options.remember !== false) rememberTransport(this.base, transport);
      }
      this._setState("open", { transport: transport });
    };

    Subscription.prototype._deliver = function (msg) {
      if (msg.id !== null && msg.id !== undefined) {
        msg.id = String(msg.id);
        // After a reconnect the server replays from our position; anything
        // at or before it was already delivered (e.g. a message both in the
        // replay and in flight on the old connection).
        if (this._lastId !== null && compareIds(msg.id, this._lastId) <= 0) {
          this.stats.duplicates++;
          return;
        }
        this._lastId = msg.id;
      }
      this.stats.received++;
      if (this.options.onMessage) {
        try {
          this.options.onMessage(msg);
        } catch (e) {
          reportAsync(e);
        }
      }
    };

    /** A position the server reported (long-poll): only ever forward. */
    Subscription.prototype._advance = function (id) {
      if (!id || !/^\d+$/.test(id)) return;
      if (this._lastId === null || compareIds(id, this._lastId) > 0) this._lastId = id;
    };

    function isAuthStatus(status) {
      return status === 401 || status === 403;
    }

    /** An answer that shows the server (or a proxy in front of it) is up
     * and simply does not let this transport through. 5xx, 408 and 429
     * mean "down or busy": every transport would fare alike. */
    function answersButRefuses(status) {
      return status !== null && status !== undefined && status < 500 && status !== 408 && status !== 429;
    }

    Subscription.prototype._onFailed = function (transport, url, info) {
      var self = this;
      clearTimeout(this._openTimer);
      this._conn = null;
      if (info.opened && !isAuthStatus(info.status)) {
        // A working connection dropped: come back soon, preferring what
        // just worked.
        this._attempt = 0;
        this._index = 0;
        this._plan = this._makePlan();
        var delay = Math.max(info.retryAfterMs || 0, backoffDelay(0, this._backoff.base, this._backoff.cap));
        this._retry(info.reason, delay, transport, info.status);
        return;
      }
      // It never opened (or was refused). The HTTP status says why, and a
      // WebSocket or EventSource hides it, so ask with a plain GET:
      // - no answer: the server is unreachable (down, restarting) and
      //   every transport would fail alike: wait, then retry;
      // - an answer that refuses only this transport (a proxy breaking
      //   WebSocket gets the plain GET through, crier answers 400): try the
      //   next transport now; but a quick failure may also be a race with
      //   a restart (the old process died under the attempt, the new one
      //   answered the probe), so the same transport gets one more
      //   immediate try first, lest a restart push clients off WebSocket
      //   for good. A timeout is no such race and falls back at once;
      // - 401/403: the token is refused. With `auto` the other transports
      //   are still tried once (a proxy may 403 WebSocket upgrades), and
      //   the subscription closes when the last one is refused too.
      // A long-poll needs no probe: fetch already tells an answer (with
      // its status) from no answer at all.
      var known = transport === "lp" || (info.status !== undefined && info.status !== null);
      var gen = this._gen;
      (known ? Promise.resolve({ status: info.status === undefined ? null : info.status }) : probeStatus(this._env.fetch, url)).then(function (r) {
        if (self._closed || gen !== self._gen) return;
        var hasNext = self._index + 1 < self._plan.length;
        if (isAuthStatus(r.status) && !hasNext) {
          self._giveUp(r.status, transport);
          return;
        }
        if (hasNext && (isAuthStatus(r.status) || answersButRefuses(r.status))) {
          if (!isAuthStatus(r.status) && !info.timedOut && !self._retriedSame) {
            self._retriedSame = true;
          } else {
            self._retriedSame = false;
            self._index++;
          }
          self._connect();
          return;
        }
        self._retriedSame = false;
        self._index = 0;
        self._plan = self._makePlan();
        var wait = backoffDelay(self._attempt++, self._backoff.base, self._backoff.cap);
        self._retry(info.reason, Math.max(info.retryAfterMs || 0, wait), transport, r.status);
      });
    };

    Subscription.prototype._retry = function (reason, delay, transport, status) {
      var self = this;
      var info = { reason: reason, delay: delay, attempt: this._attempt, transport: transport };
      if (status !== null && status !== undefined) info.status = status;
      this._setState(this._everOpened ? "reconnecting" : "connecting", info);
      clearTimeout(this._timer);
      this._timer = setTimeout(function () {
        self._connect();
      }, delay);
    };

    Subscription.prototype._giveUp = function (status, transport) {
      this._closed = true;
      clearTimeout(this._timer);
      clearTimeout(this._openTimer);
      this._setState("closed", {
        reason: status === 401 ? "unauthorized" : "forbidden",
        status: status,
        transport: transport,
      });
    };

    /** Stops the subscription for good. */
    Subscription.prototype.close = function () {
      if (this._closed) return;
      this._closed = true;
      this._gen++;
      clearTimeout(this._timer);
      clearTimeout(this._openTimer);
      if (this._conn) this._conn.close();
      this._conn = null;
      this._setState("closed", { reason: "closed by client" });
    };

    function subscribe(base, channels, options) {
      return new Subscription(base, channels, options || {});
    }

    // ---- publishing ----

    function isBinary(data) {
      return (typeof ArrayBuffer !== "undefined" && (data instanceof ArrayBuffer || ArrayBuffer.isView(data))) ||
        (typeof Blob !== "undefined" && data instanceof Blob);
    }

    function publishHttp(base, channel, data, opts, env) {
      var headers = {};
      var body = data;
      if (typeof data !== "string" && !isBinary(data)) {
        body = JSON.stringify(data);
        headers["Content-Type"] = "application/json";
      } else if (isBinary(data)) {
        headers["Content-Type"] = "application/octet-stream";
      }
      if (opts.contentType) headers["Content-Type"] = opts.contentType;
      if (opts.event) headers["Event-Type"] = opts.event;
      if (opts.token) headers.Authorization = "Bearer " + opts.token;
      return env.fetch(base + "/pub?id=" + channel, { method: "POST", headers: headers, body: body }).then(function (res) {
        return res.text().then(function (text) {
          var json = null;
          try {
            json = JSON.parse(text);
          } catch (e) {
            json = null;
          }
          if (!res.ok) {
            var err = new Error("crier: publish answered " + res.status + (json && json.error ? ": " + json.error : ""));
            err.status = res.status;
            err.body = json;
            throw err;
          }
          return json;
        });
      });
    }

    // One publishing WebSocket per (base, channel, token), reused by later
    // publishes and closed after PUBLISH_IDLE_MS without use.
    var publishers = {};

    function WsPublisher(key, url, env) {
      var self = this;
      this.key = key;
      this.pending = [];
      this.queue = [];
      this.ws = new env.WebSocket(url, [JSON_SUBPROTOCOL]);
      this.ws.onopen = function () {
        self.queue.splice(0).forEach(function (text) {
          self.ws.send(text);
        });
      };
      // The server sends every publish back to its sender, who is
      // subscribed to the channel: the echo is the acknowledgement and
      // carries the message id.
      this.ws.onmessage = function (e) {
        var env;
        try {
          env = JSON.parse(e.data);
        } catch (err) {
          return;
        }
        if (env.id === undefined) return;
        for (var i = 0; i < self.pending.length; i++) {
          if (self.pending[i].text === env.data) {
            var p = self.pending.splice(i, 1)[0];
            clearTimeout(p.timer);
            p.resolve({ channel: env.channel, id: String(env.id), via: "ws" });
            break;
          }
        }
        self._touch();
      };
      this.ws.onclose = function (e) {
        delete publishers[self.key];
        self.pending.splice(0).forEach(function (p) {
          clearTimeout(p.timer);
          p.reject(new Error("crier: publishing WebSocket closed (" + e.code + ") before the server echoed the message"));
        });
      };
      this._touch();
    }

    WsPublisher.prototype._touch = function () {
      var self = this;
      clearTimeout(this.idle);
      this.idle = setTimeout(function () {
        if (self.pending.length === 0) {
          delete publishers[self.key];
          self.ws.close(1000);
        } else {
          self._touch();
        }
      }, PUBLISH_IDLE_MS);
    };

    WsPublisher.prototype.send = function (text, timeoutMs) {
      var self = this;
      return new Promise(function (resolve, reject) {
        var entry = { text: text, resolve: resolve, reject: reject };
        entry.timer = setTimeout(function () {
          var i = self.pending.indexOf(entry);
          if (i >= 0) self.pending.splice(i, 1);
          reject(new Error("crier: no echo of the published message within " + timeoutMs +
            " ms (does the server run with --ws-publish, and does the token allow it?)"));
        }, timeoutMs);
        self.pending.push(entry);
        self._touch();
        if (self.ws.readyState === 1) self.ws.send(text);
        else self.queue.push(text);
      });
    };

    function publishWs(base, channel, data, opts, env) {
      if (isBinary(data)) {
        return Promise.reject(new TypeError("crier: WebSocket publishing takes text or JSON; use {via: \"http\"} for binary"));
      }
      var text = typeof data === "string" ? data : JSON.stringify(data);
      var key = base + "|" + channel + "|" + (opts.token || "");
      var pub = publishers[key];
      if (!pub) {
        var url = toWsUrl(base + "/ws/" + channel + buildQuery({ token: opts.token }));
        pub = publishers[key] = new WsPublisher(key, url, env);
      }
      return pub.send(text, opts.timeout || PUBLISH_TIMEOUT_MS);
    }

    /** Publishes `data` (string, JSON-able value, or binary over HTTP) to
     * `channel` ("a" or "a/b"). Over WebSocket when `via: "ws"`, or when
     * the token's `publish` claim covers the channel and nothing needs
     * HTTP (an event name, a content type, binary data); else HTTP POST.
     * Resolves the server's JSON reply (HTTP) or {channel, id, via: "ws"}. */
    function publish(base, channel, data, options) {
      var opts = options || {};
      try {
        base = normalizeBase(base);
        channel = channelList(channel).join("/");
      } catch (e) {
        return Promise.reject(e);
      }
      var env = environment(opts);
      var via = opts.via;
      if (!via) {
        var needsHttp = opts.event || opts.contentType || isBinary(data) || !env.WebSocket;
        via = !needsHttp && opts.token && tokenAllowsPublish(opts.token, channel) ? "ws" : "http";
      }
      if (via === "ws") return publishWs(base, channel, data, opts, env);
      if (via === "http") return publishHttp(base, channel, data, opts, env);
      return Promise.reject(new TypeError("crier: via must be \"ws\" or \"http\""));
    }

    return {
      version: VERSION,
      subscribe: subscribe,
      publish: publish,
      Subscription: Subscription,
      defaults: {
        backoffBaseMs: BACKOFF_BASE_MS,
        backoffCapMs: BACKOFF_CAP_MS,
        openTimeoutMs: OPEN_TIMEOUT_MS,
        rememberMs: REMEMBER_MS,
        publishTimeoutMs: PUBLISH_TIMEOUT_MS,
      },
      // Not API: the pure helpers, exported for the unit tests.
      _internal: {
        compareIds: compareIds,
        backoffDelay: backoffDelay,
        tokenPublishPatterns: tokenPublishPatterns,
        patternsAllow: patternsAllow,
        tokenAllowsPublish: tokenAllowsPublish,
        channelList: channelList,
        recallTransport: recallTransport,
        rememberTransport: rememberTransport,
      },
    };
  }
);
