// The browser suite: clients/js/crier.js and the web/ pages in headless
// Chromium against a real crier. tests/browser.rs starts crier (with
// --ws-publish --store-messages 100), sets CRIER_ADDR and CRIER_CONTROL and
// runs `node tests/browser/run.mjs`; a failing case fails that Rust test.
//
// Test pages come from a node origin of their own (lib/servers.mjs), so
// every client case is cross-origin, as a widget on a customer's site is.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";

import { launch, openPage } from "./lib/browser.mjs";
import { startFront, ROOT } from "./lib/servers.mjs";
import {
  CRIER_ADDR,
  CRIER_URL,
  BACKPLANE_URL,
  BACKPLANE_REDIS_URL,
  publish,
  publishTo,
  restartCrier,
  redisServer,
} from "./lib/crier.mjs";

const require = createRequire(import.meta.url);
const ARTIFACTS = process.env.CRIER_ARTIFACTS || path.join(ROOT, "target", "browser");

let browser;
let web; // the origin of the test pages (no upstream)
// Every helper server, closed in `after` even when a case failed: an open
// server would keep node from exiting.
const servers = [];

async function front(options) {
  const f = await startFront(options);
  servers.push(f);
  return f;
}

before(async () => {
  if (!CRIER_ADDR) throw new Error("CRIER_ADDR is not set: run via `cargo test --release --test browser`");
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launch();
  web = await front({});
});

after(async () => {
  if (browser) await browser.close();
  for (const f of servers) await f.close();
});

/** A fresh browser context (own storage) with one test page. */
async function testPage(context) {
  const ctx = context || (await browser.newContext());
  return openPage(ctx, `${web.url}/test.html`);
}

function startSub(page, name, base, channels, opts) {
  return page.evaluate(([n, b, c, o]) => window.startSub(n, b, c, o), [name, base, channels, opts || {}]);
}

function readSub(page, name) {
  return page.evaluate((n) => window.readSub(n), name);
}

async function waitFor(page, name, what, timeout = 15000) {
  const fns = {
    open: (r) => r.sub.state === "open",
    closed: (r) => r.sub.state === "closed",
  };
  try {
    if (typeof what === "number") {
      await page.waitForFunction(([n, k]) => window.rec[n].msgs.length >= k, [name, what], { timeout, polling: 50 });
    } else {
      // A predicate on the page's record, sent over as source text.
      const src = (typeof what === "function" ? what : fns[what]).toString();
      await page.waitForFunction(
        ([n, src]) => new Function("r", "return (" + src + ")(r)")(window.rec[n]),
        [name, src],
        { timeout, polling: 50 }
      );
    }
  } catch (e) {
    const seen = await readSub(page, name);
    throw new Error(
      `${name}: waiting for ${what}: ${e.message}\n` +
        `state=${seen.state} transport=${seen.transport} got ${seen.msgs.length} messages\n` +
        `states=${JSON.stringify(seen.states)}\nconsole=${JSON.stringify(page.consoleErrors.slice(-5))}`
    );
  }
}

function noPageErrors(...ps) {
  for (const p of ps) assert.deepEqual(p.errors, [], "uncaught errors in the page");
}

/** An unsigned JWT with `payload` (crier.js only reads its claims). */
function jwt(payload) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}.c2ln`;
}

test("pure helpers: id order, backoff bounds, token claims, channel ids, module entry points", async () => {
  const { _internal: h, defaults } = require("../../clients/js/crier.js");
  assert.equal(h.compareIds("9", "10"), -1);
  assert.equal(h.compareIds("1796146059522010", "1796146059522009"), 1);
  assert.equal(h.compareIds("007", "7"), 0);
  // Beyond 2^53, where Numbers would call these equal.
  assert.equal(h.compareIds("90071992547409921", "90071992547409920"), 1);
  assert.equal(h.backoffDelay(0, 1000, 30000, () => 0), 0);
  assert.equal(h.backoffDelay(0, 1000, 30000, () => 0.999), 999);
  assert.equal(h.backoffDelay(3, 1000, 30000, () => 0.5), 4000);
  assert.equal(h.backoffDelay(40, 1000, 30000, () => 0.999), 29970);
  assert.deepEqual([defaults.backoffBaseMs, defaults.backoffCapMs], [1000, 30000]);
  const token = jwt({ sub: "u1", publish: ["donations", "chat:*"] });
  assert.deepEqual(h.tokenPublishPatterns(token), ["donations", "chat:*"]);
  assert.ok(h.tokenAllowsPublish(token, "donations"));
  assert.ok(h.tokenAllowsPublish(token, "chat:lobby"));
  assert.ok(h.tokenAllowsPublish(token, "donations/chat:x"));
  assert.ok(!h.tokenAllowsPublish(token, "donations2"));
  assert.ok(!h.tokenAllowsPublish(token, "donations/news"));
  assert.ok(!h.tokenAllowsPublish(jwt({ sub: "u1" }), "donations"));
  assert.ok(!h.tokenAllowsPublish("not-a-jwt", "donations"));
  assert.deepEqual(h.channelList("a/b"), ["a", "b"]);
  assert.throws(() => h.channelList(["ok", "not ok"]), /invalid channel id/);
  assert.throws(() => h.channelList("x".repeat(129)), /invalid channel id/);
  const esm = await import("../../clients/js/crier.mjs");
  assert.equal(typeof esm.default.subscribe, "function");
  assert.equal(esm.publish, esm.default.publish);
});

test("delivery on each transport (ws, sse, lp): order, ids, events, resume and missed", async () => {
  const page = await testPage();
  const transports = ["ws", "sse", "lp"];
  for (const t of transports) {
    await startSub(page, t, CRIER_URL, [`deliv-${t}`], { transport: t, events: ["score"] });
  }
  for (const t of transports) await waitFor(page, t, "open");
  const sent = [
    { body: "plain" },
    { body: "two\nlines" },
    { body: "héllo ✓ 🎉" },
    { body: "3-1", headers: { "Event-Type": "score" } },
    { body: '{"a":1}', headers: { "Content-Type": "application/json" } },
  ];
  const ids = {};
  for (const t of transports) {
    ids[t] = [];
    for (const m of sent) ids[t].push((await publish(`deliv-${t}`, m.body, m.headers)).id);
  }
  for (const t of transports) {
    await waitFor(page, t, sent.length);
    const got = await readSub(page, t);
    assert.equal(got.transport, t);
    assert.deepEqual(got.msgs.map((m) => m.id), ids[t], `${t}: ids in publish order`);
    assert.deepEqual(got.msgs.map((m) => m.data), sent.map((m) => m.body), `${t}: payloads`);
    assert.deepEqual(got.msgs.map((m) => m.event), [null, null, null, "score", null], `${t}: event names`);
    assert.ok(got.msgs.every((m) => m.channel === `deliv-${t}`), `${t}: channel`);
    assert.equal(got.lastEventId, ids[t][4]);
  }
  // Resume after the second message: exactly the last three.
  for (const t of transports) {
    await startSub(page, `${t}-resume`, CRIER_URL, [`deliv-${t}`], { transport: t, lastEventId: ids[t][1], events: ["score"] });
  }
  // A resume point older than the history: onMissed, then what is stored.
  for (const t of transports) {
    await startSub(page, `${t}-missed`, CRIER_URL, [`deliv-${t}`], { transport: t, lastEventId: "1", events: ["score"] });
  }
  for (const t of transports) {
    await waitFor(page, `${t}-resume`, 3);
    await waitFor(page, `${t}-missed`, 5);
    const resumed = await readSub(page, `${t}-resume`);
    assert.deepEqual(resumed.msgs.map((m) => m.id), ids[t].slice(2), `${t}: resume`);
    assert.deepEqual(resumed.missed, [], `${t}: no gap reported on a good resume`);
    const missed = await readSub(page, `${t}-missed`);
    assert.deepEqual(missed.msgs.map((m) => m.id), ids[t], `${t}: history after missed`);
    assert.equal(missed.missed.length, 1, `${t}: onMissed once`);
    assert.equal(missed.missed[0].transport, t);
  }
  noPageErrors(page);
  await page.context().close();
});

test("publish from the page: HTTP POST, WebSocket when asked or when the token allows", async () => {
  const page = await testPage();
  await startSub(page, "s", CRIER_URL, ["pubtest"], { transport: "ws" });
  await waitFor(page, "s", "open");
  const allow = jwt({ publish: ["pub*"] });
  const deny = jwt({ publish: ["other"] });
  const r = await page.evaluate(
    async ([base, allow, deny]) => ({
      http: await crier.publish(base, "pubtest", "via http"),
      ws: await crier.publish(base, "pubtest", "via ws", { via: "ws" }),
      token: await crier.publish(base, "pubtest", { n: 3 }, { token: allow }),
      denied: await crier.publish(base, "pubtest", "not covered", { token: deny }),
      bad: await crier.publish(base, "bad channel!", "x").then(() => "resolved", (e) => e.message),
    }),
    [CRIER_URL, allow, deny]
  );
  assert.equal(r.http.channel, "pubtest");
  assert.ok(r.http.subscribers >= 1, "the HTTP reply is crier's JSON");
  assert.equal(r.ws.via, "ws");
  assert.equal(r.token.via, "ws", "a token whose publish claim covers the channel publishes over WebSocket");
  assert.equal(r.denied.via, undefined, "a token that does not cover it publishes over HTTP");
  assert.equal(r.denied.channel, "pubtest");
  assert.match(r.bad, /invalid channel id/);
  await waitFor(page, "s", 4);
  const got = await readSub(page, "s");
  assert.deepEqual(got.msgs.map((m) => m.id), [r.http.id, r.ws.id, r.token.id, r.denied.id]);
  assert.deepEqual(got.msgs.map((m) => m.data), ["via http", "via ws", '{"n":3}', "not covered"]);
  noPageErrors(page);
  await page.context().close();
});

/** Publishes `count` messages to `channel`, calling `during(i)` before
 * message i; returns the ids crier acknowledged. */
async function publishSeries(channel, count, during) {
  const ids = [];
  for (let i = 0; i < count; i++) {
    if (during) await during(i);
    ids.push((await publish(channel, `m${i}`)).id);
  }
  return ids;
}

async function assertExactlyOnce(page, names, ids) {
  for (const n of names) {
    await waitFor(page, n, ids.length, 20000);
    await sleep(150); // a duplicate would arrive right behind the last one
    const got = await readSub(page, n);
    assert.deepEqual(got.msgs.map((m) => m.id), ids, `${n} (${got.transport}): every message once, in order`);
  }
}

test("ids at or below the last one delivered are dropped (ids past 2^53 compared as strings)", async () => {
  // A server that repeats itself: the first stream sends a duplicate and
  // an older id, then ends; the second (which must resume after the last
  // id) repeats that id before going on.
  const big = (n) => (90071992547409920n + BigInt(n)).toString();
  const streams = [];
  const mock = await front({
    web: false,
    handle(req, res) {
      if (!req.url.startsWith("/ev/dups")) return false;
      streams.push(req.url);
      res.writeHead(200, { "Content-Type": "text/event-stream", "Access-Control-Allow-Origin": "*" });
      const ids = streams.length === 1 ? [1, 2, 2, 0, 3] : [3, 4];
      for (const i of ids) res.write(`id: ${big(i)}\ndata: m${i}\n\n`);
      if (streams.length === 1) res.end();
      return true;
    },
  });
  const page = await testPage();
  await startSub(page, "d", mock.url, ["dups"], { transport: "sse" });
  await waitFor(page, "d", 4);
  await sleep(200);
  const got = await readSub(page, "d");
  assert.deepEqual(got.msgs.map((m) => m.data), ["m1", "m2", "m3", "m4"]);
  assert.equal(got.stats.duplicates, 3);
  assert.equal(streams[1], `/ev/dups?last_event_id=${big(3)}`, "the reconnect resumed after the last id");
  noPageErrors(page);
  await page.context().close();
});

test("connections cut mid-stream (proxy kills every socket twice): no loss, no duplicates", async () => {
  const proxy = await front({ upstream: CRIER_ADDR, web: false });
  const page = await testPage();
  const names = ["ws", "sse", "lp"];
  for (const t of names) await startSub(page, t, proxy.url, ["cut"], { transport: t });
  for (const t of names) await waitFor(page, t, "open");
  let cuts = 0;
  const ids = await publishSeries("cut", 60, async (i) => {
    if (i === 20 || i === 40) {
      // Cut only connections that are up again (each must see both cuts),
      // and when every long-poll is waiting, not between two polls.
      // (A long-poll may not need to: Chrome retries a GET whose reused
      // keep-alive connection dies before the answer, on a new one.)
      const k = cuts + 1;
      for (const t of ["ws", "sse"]) {
        await waitFor(page, t, new Function("r", `return r.sub.state === "open" && r.sub.stats.connects >= ${k}`));
      }
      await waitFor(page, "lp", "open");
      await sleep(250);
      cuts += proxy.cut() > 0 ? 1 : 0;
    }
    await sleep(10);
  });
  assert.equal(cuts, 2);
  await assertExactlyOnce(page, names, ids);
  for (const t of ["ws", "sse"]) {
    const got = await readSub(page, t);
    assert.ok(got.stats.connects >= 3, `${t} reconnected after each cut (${got.stats.connects} connects)`);
  }
  noPageErrors(page);
  await page.context().close();
});

test("server restart mid-stream (SIGTERM drain, then SIGKILL): no loss, no duplicates", async () => {
  const page = await testPage();
  const names = ["ws", "sse", "lp", "auto"];
  for (const t of names) await startSub(page, t, CRIER_URL, ["restart"], { transport: t });
  for (const t of names) await waitFor(page, t, "open");
  const ids = await publishSeries("restart", 10);
  await assertExactlyOnce(page, names, ids);
  await restartCrier("term");
  // Published while the clients are still reconnecting: they get these
  // from the new run's history.
  ids.push(...(await publishSeries("restart", 10)));
  await assertExactlyOnce(page, names, ids);
  await restartCrier("kill");
  ids.push(...(await publishSeries("restart", 10)));
  await assertExactlyOnce(page, names, ids);
  for (const t of names) {
    const got = await readSub(page, t);
    // A long-poll may ride out the crash without a reconnect of ours:
    // Chrome retries a GET whose reused connection died before the answer.
    assert.ok(got.stats.connects >= (t === "lp" ? 2 : 3), `${t} reconnected after each restart (${got.stats.connects} connects)`);
    assert.ok(got.states.some((s) => s.state === "reconnecting"), `${t} reported reconnecting`);
    assert.equal(got.state, "open");
  }
  assert.equal((await readSub(page, "auto")).transport, "ws", "a restart does not push auto off WebSocket");
  noPageErrors(page);
  await page.context().close();
});

test("auto falls back to EventSource when a proxy breaks WebSocket, and remembers it", async () => {
  const noWs = await front({ upstream: CRIER_ADDR, web: false, rejectUpgrades: true });
  const ctx = await browser.newContext();
  const page = await testPage(ctx);
  await startSub(page, "a", noWs.url, ["fallback"], { transport: "auto" });
  await waitFor(page, "a", "open");
  let got = await readSub(page, "a");
  assert.equal(got.transport, "sse");
  assert.ok(noWs.stats.upgrades >= 2, "WebSocket was tried first, twice (once could be a restart race)");
  const ids = await publishSeries("fallback", 3);
  await assertExactlyOnce(page, ["a"], ids);
  const stored = await page.evaluate((base) => localStorage.getItem("crier.transport:" + base), noWs.url);
  assert.equal(JSON.parse(stored).transport, "sse");

  // Another tab of the same browser goes straight to EventSource.
  const upgrades = noWs.stats.upgrades;
  const page2 = await testPage(ctx);
  await startSub(page2, "b", noWs.url, ["fallback"], { transport: "auto" });
  await waitFor(page2, "b", "open");
  got = await readSub(page2, "b");
  assert.equal(got.transport, "sse");
  assert.equal(got.states[0].transport, "sse", "first try is the remembered transport");
  assert.equal(noWs.stats.upgrades, upgrades, "no WebSocket attempt");

  // A proxy that holds the upgrade forever: the open timeout moves on.
  const holding = await front({ upstream: CRIER_ADDR, web: false, holdUpgrades: true });
  const page3 = await testPage();
  const t0 = Date.now();
  await startSub(page3, "c", holding.url, ["fallback"], { transport: "auto", openTimeout: 1500 });
  await waitFor(page3, "c", "open");
  assert.equal((await readSub(page3, "c")).transport, "sse");
  assert.ok(Date.now() - t0 >= 1500, "waited for the open timeout");
  noPageErrors(page, page2, page3);
  await ctx.close();
  await page3.context().close();
});

test("a 403 (or 401) stops reconnecting on every transport and reports closed", async () => {
  const mock = await front({ denyStatus: 403, web: false });
  const mock401 = await front({ denyStatus: 401, web: false });
  const page = await testPage();
  const names = ["auto", "ws", "sse", "lp"];
  for (const t of names) await startSub(page, t, mock.url, ["secret"], { transport: t, token: "bad" });
  await startSub(page, "ws401", mock401.url, ["secret"], { transport: "ws", token: "bad" });
  for (const t of names) await waitFor(page, t, "closed", 10000);
  await waitFor(page, "ws401", "closed", 10000);
  const asked = mock.stats.subscribes + mock401.stats.subscribes;
  for (const t of names) {
    const got = await readSub(page, t);
    const last = got.states[got.states.length - 1];
    assert.equal(last.state, "closed");
    assert.equal(last.status, 403, `${t}: status`);
    assert.equal(last.reason, "forbidden");
  }
  const got401 = await readSub(page, "ws401");
  assert.deepEqual([got401.state, got401.states.at(-1).status, got401.states.at(-1).reason], ["closed", 401, "unauthorized"]);
  assert.ok(mock.stats.paths.every((p) => p.includes("token=bad")), "the token went with every request");
  await sleep(2500);
  assert.equal(mock.stats.subscribes + mock401.stats.subscribes, asked, "no request after closed");
  noPageErrors(page);
  await page.context().close();
});

test("two tabs on the same channel both get every message", async () => {
  const ctx = await browser.newContext();
  const p1 = await testPage(ctx);
  const p2 = await testPage(ctx);
  await startSub(p1, "t", CRIER_URL, ["tabs"], {});
  await startSub(p2, "t", CRIER_URL, ["tabs"], { transport: "sse" });
  await waitFor(p1, "t", "open");
  await waitFor(p2, "t", "open");
  const ids = await publishSeries("tabs", 10);
  await assertExactlyOnce(p1, ["t"], ids);
  await assertExactlyOnce(p2, ["t"], ids);
  noPageErrors(p1, p2);
  await ctx.close();
});

test("demo page: a donation made on one page shows at once on every open page", async () => {
  // crier serves /demo and /crier.js itself.
  const channel = `donations-${Date.now()}`;
  const ctx = await browser.newContext({ viewport: { width: 640, height: 940 } });
  const p1 = await openPage(ctx, `${CRIER_URL}/demo?goal=200&channel=${channel}`);
  // The same page opened from another origin, naming its server.
  const p2 = await openPage(ctx, `${web.url}/demo?server=${encodeURIComponent(CRIER_URL)}&goal=200&channel=${channel}`);
  for (const p of [p1, p2]) await p.waitForSelector('#status[data-state="open"]', { timeout: 10000 });

  await p1.fill('input[name="name"]', "Ada");
  await p1.fill('input[name="amount"]', "25");
  await p1.fill('input[name="message"]', "Go team");
  await p1.click('button[type="submit"]');
  for (const p of [p1, p2]) {
    await p.waitForSelector('#total[data-cents="2500"]', { timeout: 10000 });
    assert.equal(await p.textContent("#donors li:first-child .who"), "Ada");
    assert.equal(await p.textContent("#donors li:first-child .note"), "Go team");
    assert.equal(await p.textContent("#count"), "1");
  }
  // A backend publishing straight to crier, and a message that is not a
  // donation (ignored, not counted).
  await publish(channel, "not json");
  await publish(channel, JSON.stringify({ name: "Grace", amount: 75.5, message: "for the servers" }), {
    "Content-Type": "application/json",
  });
  for (const p of [p1, p2]) {
    await p.waitForSelector('#total[data-cents="10050"]', { timeout: 10000 });
    assert.equal(await p.textContent("#count"), "2");
    assert.equal(await p.textContent("#donors li:first-child .who"), "Grace");
    assert.equal(await p.getAttribute("#bar", "aria-valuenow"), "50");
    assert.equal(await p.textContent("#total"), "$100.50");
  }
  // A page opened later starts from the stored history.
  const p3 = await openPage(ctx, `${CRIER_URL}/demo?goal=200&channel=${channel}`);
  await p3.waitForSelector('#total[data-cents="10050"]', { timeout: 10000 });
  assert.equal(await p3.locator("#donors li").count(), 2);

  await p1.waitForTimeout(900); // let the bar and arrival animations finish
  const shot = path.join(ARTIFACTS, "demo.png");
  await p1.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 10000, `${shot} is a real picture`);
  noPageErrors(p1, p2, p3);
  await ctx.close();
});

/** Coloured (not grey) pixels of each canvas matching `selector`: a
 * chart's lines, as against its grid and labels. */
function paintedPixels(dash, selector) {
  return dash.evaluate((sel) =>
    Array.from(document.querySelectorAll(sel)).map((c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let colored = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2])) colored++;
      return colored;
    }), selector);
}

/**
 * The dashboard's backplane shard rows, one {url, up, rtt, channels,
 * forwarded, refused, received, recovered, reconnects} (cell texts) per
 * shard, read in one go once every row has its rates (the first document
 * after a page load has none) and `ready(rows)` holds.
 */
async function backplaneRows(dash, ready = () => true, timeout = 10000) {
  try {
    return await readBackplaneRows(dash, ready, timeout);
  } catch (e) {
    const seen = await dash.evaluate(() => [document.querySelector("#backplane").dataset.state, document.querySelector("#backplane-rows").innerText]);
    throw new Error(`dashboard backplane: waiting for ${ready}: ${e.message}\nstate=${seen[0]} rows=${JSON.stringify(seen[1])}`);
  }
}

async function readBackplaneRows(dash, ready, timeout) {
  const handle = await dash.waitForFunction(
    (src) => {
      const rows = Array.from(document.querySelectorAll("#backplane-rows tr")).map((tr) =>
        Object.fromEntries(Array.from(tr.cells).map((td) => [td.className, td.textContent]))
      );
      const rated = rows.every((r) => ["forwarded", "refused", "received"].every((k) => r[k] !== "–"));
      return rows.length > 0 && rated && new Function("rows", "return (" + src + ")(rows)")(rows) ? rows : false;
    },
    ready.toString(),
    { timeout, polling: 50 }
  );
  return handle.jsonValue();
}

test("dashboard renders live figures and charts from crier's $status stream; a single node has no backplane", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  // Some traffic to chart: a subscriber and a few publishes a second.
  const page = await testPage(ctx);
  await startSub(page, "d", CRIER_URL, ["dash"], { transport: "ws" });
  await waitFor(page, "d", "open");
  const dash = await openPage(ctx, `${CRIER_URL}/dashboard`);
  const stop = Date.now() + 3500;
  let sent = 0;
  while (Date.now() < stop) {
    await publish("dash", `tick ${sent++}`);
    await sleep(100);
  }
  await dash.waitForFunction(() => document.querySelector("#tile-published").textContent !== "–", null, { timeout: 10000 });
  const source = await dash.getAttribute("#source", "data-kind");
  assert.equal(source, "stream", "fed by crier's own /ev/$status stream");
  const conns = Number(await dash.textContent("#tile-connections"));
  assert.ok(conns >= 2, `connections tile shows the open ones (${conns})`);
  assert.ok(Number(await dash.textContent("#tile-published")) > 0, "publishes/s above 0 while publishing");
  assert.match(await dash.textContent("#tile-rss"), /MiB|KiB/);
  assert.match(await dash.textContent("#uptime"), /^up /);
  // Charts: 6 fixed (latency p99s among them) + 2 per-reactor panels,
  // each canvas with line pixels.
  const painted = await paintedPixels(dash, "canvas");
  assert.equal(painted.length, 8);
  assert.ok(painted.every((n) => n > 50), `every chart has coloured lines (${painted})`);
  // No backplane key (crier without --redis): one line saying so.
  assert.equal(await dash.getAttribute("#backplane", "data-state"), "none");
  assert.match(await dash.textContent("#backplane"), /single node — no backplane/);
  assert.equal(await dash.isVisible("#backplane-detail"), false, "no shard table or RTT chart");
  const shot = path.join(ARTIFACTS, "dashboard.png");
  await dash.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 10000);
  noPageErrors(page, dash);
  await ctx.close();
});

test("dashboard takes the pushed /ev/$status stream when there is one, and shows a backplane", async () => {
  // What crier is to publish: the /status document as SSE event "status".
  const doc = (n) => ({
    uptime_seconds: 100 + n,
    connections: { http: 1, eventsource: 2, stream: 0, websocket: 40 + n, longpoll: 3, total: 46 + n },
    published_messages: 1000 * n,
    delivered_messages: 5000 * n,
    bytes_out: 250000 * n,
    slow_consumers: n,
    dead_peers_reaped: { eof: 2 * n, reset: n, timeout: 0, write_error: 0 },
    rss_bytes: 64 * 1024 * 1024,
    reactors: [
      { id: 0, connections: 20, delivered_messages: 2500 * n, bytes_out: 125000 * n },
      { id: 1, connections: 26 + n, delivered_messages: 2500 * n, bytes_out: 125000 * n },
    ],
    // Two shards, the second down: "degraded" (a real crier on one Redis
    // shows up and down only; this is the one case it cannot show).
    backplane: {
      state: "degraded",
      shards: [
        { url: "redis://10.0.0.5:6379", up: true, rtt_us: 250, channels: 12, publishes_forwarded: 600 * n,
          publishes_refused: 0, messages_received: 3000 * n, messages_recovered: 4, reconnects: 1 },
        { url: "redis://10.0.0.6:6379", up: false, rtt_us: 900, channels: 9, publishes_forwarded: 100,
          publishes_refused: 30 * n, messages_received: 50, messages_recovered: 0, reconnects: 3 },
      ],
    },
  });
  const mock = await front({ mockStatus: doc });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  const dash = await openPage(ctx, `${mock.url}/dashboard`);
  await dash.waitForSelector('#source[data-kind="stream"]', { timeout: 5000 });
  await dash.waitForFunction(() => document.querySelector("#tile-published").textContent !== "–", null, { timeout: 5000 });
  // 1000 publishes per ~300 ms: thousands a second (timing decides which).
  assert.match(await dash.textContent("#tile-published"), /^\d(\.\d)?k$/);
  assert.equal(await dash.getAttribute("#backplane", "data-state"), "degraded");
  assert.equal(await dash.textContent("#backplane-state"), "degraded");
  assert.equal(await dash.getAttribute("#backplane-state", "data-kind"), "warn");
  assert.match(await dash.textContent("#backplane-summary"), /1 of 2 shards up · 21 channels/);
  const rows = await backplaneRows(dash);
  assert.deepEqual(rows.map((r) => [r.url, r.up, r.rtt, r.channels, r.recovered, r.reconnects]), [
    ["10.0.0.5:6379", "up", "0.25 ms", "12", "4", "1"],
    ["10.0.0.6:6379", "down", "–", "9", "0", "3"],
  ], "per shard: state, RTT (none while down), channels, totals");
  // Rates from the counters: 600 forwarded and 3000 received per ~300 ms,
  // 30 refused on the shard that is down, nothing on the other.
  assert.match(rows[0].forwarded, /^\d(\.\d)?k$/);
  assert.match(rows[0].received, /^\d+(\.\d)?k$/);
  assert.ok(Number(rows[1].refused) > 0, `refused/s on the down shard (${rows[1].refused})`);
  assert.equal(rows[0].refused, "0");
  assert.equal(rows[1].forwarded, "0");
  assert.equal(await dash.locator("canvas").count(), 9, "6 charts + 2 per-reactor ones + Redis RTT");
  assert.equal(await dash.locator("#backplane canvas").count(), 1, "the RTT chart is in the backplane panel");
  const perReactor = await dash.evaluate(() => document.querySelectorAll("#charts .panel")[6].querySelectorAll(".legend span").length);
  assert.equal(perReactor, 2, "one line per reactor");
  assert.ok(mock.stats.paths.every((p) => !p.startsWith("GET /status")), "no polling while the stream works");
  noPageErrors(dash);
  await ctx.close();
});

/** Publishes to `channel` on the crier at `base` every 100 ms until
 * stopped; `statuses` collects the HTTP status of each reply. */
function keepPublishing(base, channel) {
  let on = true;
  const statuses = [];
  const done = (async () => {
    for (let i = 0; on; i++) {
      const res = await fetch(`${base}/pub?id=${channel}`, { method: "POST", body: `tick ${i}` });
      statuses.push(res.status);
      await res.arrayBuffer();
      await sleep(100);
    }
  })();
  return { statuses, stop: () => ((on = false), done) };
}

test("dashboard on a crier with --redis: backplane up, down while redis-server is killed, up again", async () => {
  assert.ok(BACKPLANE_URL && BACKPLANE_REDIS_URL, "tests/browser.rs sets CRIER_BACKPLANE_ADDR and BACKPLANE_REDIS_URL");
  const shard = BACKPLANE_REDIS_URL.replace(/^redis:\/\//, "");
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  // A subscriber on that node, so the node listens to the channel in Redis
  // and receives what is published to it there.
  const page = await testPage(ctx);
  await startSub(page, "bp", BACKPLANE_URL, ["dash-bp"], { transport: "ws" });
  await waitFor(page, "bp", "open");
  const dash = await openPage(ctx, `${BACKPLANE_URL}/dashboard`);
  const publisher = keepPublishing(BACKPLANE_URL, "dash-bp");
  try {
    // Up: the shard row with rates from its counters.
    let rows = await backplaneRows(
      dash,
      (rows) => rows[0].up === "up" && parseFloat(rows[0].forwarded) > 0 && parseFloat(rows[0].received) > 0
    );
    assert.equal(await dash.getAttribute("#backplane", "data-state"), "up");
    assert.equal(await dash.textContent("#backplane-state"), "up");
    assert.equal(await dash.getAttribute("#backplane-state", "data-kind"), "ok");
    assert.match(await dash.textContent("#backplane-summary"), /Redis: 1 of 1 shard up/);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].url, shard, "the shard's address, from /status");
    assert.match(rows[0].rtt, /^\d+(\.\d+)? ms$/);
    assert.ok(Number(rows[0].channels) >= 1, `channels listened to (${rows[0].channels})`);
    assert.deepEqual([rows[0].refused, rows[0].recovered, rows[0].reconnects], ["0", "0", "0"]);
    assert.ok((await paintedPixels(dash, "#backplane canvas"))[0] > 50, "the RTT chart has a line");
    const shot = path.join(ARTIFACTS, "dashboard-backplane.png");
    await dash.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10000, `${shot} is a real picture`);

    // Down: Redis killed; publishes meanwhile are refused (503).
    await redisServer("stop");
    await dash.waitForSelector('#backplane[data-state="down"]', { timeout: 10000 });
    rows = await backplaneRows(dash, (rows) => rows[0].up === "down" && parseFloat(rows[0].refused) > 0);
    assert.equal(await dash.textContent("#backplane-state"), "down");
    assert.equal(await dash.getAttribute("#backplane-state", "data-kind"), "bad");
    assert.equal(rows[0].rtt, "–", "no RTT while down");
    assert.equal(await dash.getAttribute("#source", "data-kind"), "stream", "the $status stream goes on without Redis");
    assert.ok(publisher.statuses.includes(503), `publishes refused while Redis is down (${publisher.statuses})`);
    assert.equal((await readSub(page, "bp")).state, "open", "subscribers keep their connection");
    const down = path.join(ARTIFACTS, "dashboard-backplane-down.png");
    await dash.screenshot({ path: down, fullPage: true });
    assert.ok(fs.statSync(down).size > 10000, `${down} is a real picture`);
  } finally {
    await publisher.stop();
  }

  // Up again: the node reconnects by itself (backoff with jitter).
  await redisServer("start");
  const rows = await backplaneRows(dash, (rows) => rows[0].up === "up" && rows[0].reconnects === "1", 20000);
  assert.equal(await dash.getAttribute("#backplane", "data-state"), "up");
  assert.match(rows[0].rtt, /^\d+(\.\d+)? ms$/);
  await publishTo(BACKPLANE_URL, "dash-bp", "after the outage");
  await waitFor(page, "bp", (r) => r.msgs.some((m) => m.data === "after the outage"));
  noPageErrors(page, dash);
  await ctx.close();
});
