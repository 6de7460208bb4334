// The compatibility modes in headless Chromium: browser clients written
// against nginx-push-stream-module's and Nchan's documented behaviour, and
// the peers' own clients from npm (pushstream.js as `pushstreamjs`,
// NchanSubscriber.js as `nchan`), against a real crier in the matching
// mode. tests/browser_compat.rs starts the criers and sets
// CRIER_PS_ADDR (--compat push-stream with push-stream's JSON message
// template) and CRIER_NCHAN_ADDR (--compat nchan), then runs
// `node tests/browser/compat.mjs`.
//
// Each case opens every client on one channel, publishes, cuts every
// connection at a proxy in front of crier (the page's own origin, so
// pushstream.js and NchanSubscriber.js see the server they were
// configured with), publishes during the gap and after the clients came
// back, and checks every client got each message exactly once, in order.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

import { launch, openPage } from "./lib/browser.mjs";
import { startFront, ROOT } from "./lib/servers.mjs";

const PS_ADDR = process.env.CRIER_PS_ADDR;
const NCHAN_ADDR = process.env.CRIER_NCHAN_ADDR;
const MODULES = path.join(ROOT, "tests/browser/node_modules");

// What the proxy serves itself; everything else goes to crier.
const FILES = {
  "/compat.html": [path.join(ROOT, "tests/browser/pages/compat.html"), "text/html; charset=utf-8"],
  "/pushstream.js": [path.join(MODULES, "pushstreamjs/src/pushstream.js"), "application/javascript"],
  "/NchanSubscriber.js": [path.join(MODULES, "nchan/NchanSubscriber.js"), "application/javascript"],
};

let browser;
const fronts = [];

before(async () => {
  if (!PS_ADDR || !NCHAN_ADDR) {
    throw new Error("CRIER_PS_ADDR / CRIER_NCHAN_ADDR are not set: run via `cargo test --release --test browser_compat`");
  }
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  for (const f of fronts) await f.close();
});

/** A proxy in front of crier at `upstream` that also serves FILES. */
async function frontFor(upstream) {
  const f = await startFront({
    upstream,
    web: false,
    handle: (req, res) => {
      const file = FILES[req.url.split("?")[0]];
      if (!file) return false;
      const body = fs.readFileSync(file[0]);
      res.writeHead(200, { "Content-Type": file[1], "Content-Length": body.length, "Cache-Control": "no-cache" });
      res.end(body);
      return true;
    },
  });
  fronts.push(f);
  return f;
}

/** Polls `f` every 50 ms until it returns a truthy value; fails with
 * `what()` after `ms`. */
async function until(what, f, ms = 8000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${await what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function subscribers(addr, channel) {
  const res = await fetch(`http://${addr}/status?id=${channel}`);
  return res.ok ? (await res.json()).subscribers : 0;
}

async function readAll(page, names) {
  const out = {};
  for (const n of names) out[n] = await page.evaluate((n) => window.readRec(n), n);
  return out;
}

/** Waits until every client in `names` has `n` messages (and shows what
 * each had when it times out). */
async function waitMessages(page, names, n) {
  await until(
    async () => `${n} messages on each of ${names}: ${JSON.stringify(await readAll(page, names))}`,
    async () => {
      const recs = await readAll(page, names);
      return names.every((k) => recs[k].msgs.length >= n);
    }
  );
}

/**
 * The scenario both modes share: the page has opened the clients named in
 * `names` (`streams` being those that hold a connection open), `publish(i)`
 * publishes message i as the peer's publishers do, `text(i)` is what a
 * client must show for it.
 */
async function deliverAndResume({ addr, channel, front, page, names, streams, publish, text }) {
  await until(
    async () => `${names.length} subscribers on ${channel}, have ${await subscribers(addr, channel)}`,
    async () => (await subscribers(addr, channel)) >= names.length
  );
  for (let i = 1; i <= 3; i++) await publish(i);
  await waitMessages(page, names, 3);

  // A dropped connection (every socket at the proxy, both ways). The
  // messages published right after it, before any client is back (the
  // soonest retry is 200 ms away), must come with the resume; waiting for
  // them is waiting for every client to have reconnected.
  const before = front.stats.subscribes;
  assert.ok(front.cut() > 0, "the proxy had connections to cut");
  for (let i = 4; i <= 6; i++) await publish(i);
  await waitMessages(page, names, 6);
  assert.ok(front.stats.subscribes - before >= streams.length, "every streaming client subscribed again");
  for (let i = 7; i <= 9; i++) await publish(i);
  await waitMessages(page, names, 9);

  const want = Array.from({ length: 9 }, (_, i) => text(i + 1));
  const recs = await readAll(page, names);
  for (const k of names) {
    assert.deepEqual(recs[k].msgs, want, `${k}: each message once, in order (${JSON.stringify(recs[k])})`);
    assert.equal(new Set(recs[k].ids).size, 9, `${k}: distinct ids ${JSON.stringify(recs[k].ids)}`);
  }
  assert.deepEqual(page.errors, [], "uncaught errors in the page");
  // The clients this page wrote itself count their connections: each
  // came back once.
  for (const k of ["es", "ws"]) assert.equal(recs[k].opens, 2, `${k} reconnected once`);
  return recs;
}

test("push-stream: EventSource, WebSocket and pushstream.js (eventsource, websocket, long-polling, JSONP) with the JSON template", async () => {
  const front = await frontFor(PS_ADDR);
  const page = await openPage(await browser.newContext(), `${front.url}/compat.html`);
  const channel = "psbrowser";
  await page.evaluate((c) => {
    window.psEventSource("es", c);
    window.psWebSocket("ws", c);
    window.psPushStream("psjs-es", c, { modes: "eventsource" });
    window.psPushStream("psjs-ws", c, { modes: "websocket", messagesControlByArgument: true });
    window.psPushStream("psjs-lp", c, { modes: "longpolling" });
    window.psPushStream("psjs-jsonp", c, { modes: "longpolling", useJSONP: true });
  }, channel);
  // Texts a JSON template cannot carry raw: publishers URL-encode them,
  // as pushstream.js's sendMessage does, and the clients decode.
  const text = (i) => `m${i} "quoted" & ✓`;
  const recs = await deliverAndResume({
    addr: PS_ADDR,
    channel,
    front,
    page,
    names: ["es", "ws", "psjs-es", "psjs-ws", "psjs-lp", "psjs-jsonp"],
    streams: ["es", "ws", "psjs-es", "psjs-ws"],
    publish: async (i) => {
      const res = await fetch(`http://${PS_ADDR}/pub?id=${channel}`, {
        method: "POST",
        body: encodeURIComponent(text(i)),
        headers: { "Event-Id": `ev-${i}` },
      });
      assert.equal(res.status, 200, await res.text());
    },
    text,
  });
  // pushstream.js hands its callback the template's fields.
  assert.deepEqual(recs["psjs-ws"].channels, Array(9).fill(channel));
  assert.deepEqual(recs["psjs-es"].eventids, Array.from({ length: 9 }, (_, i) => `ev-${i + 1}`));
  assert.deepEqual(recs.es.ids, Array.from({ length: 9 }, (_, i) => `ev-${i + 1}`));
  // The JSONP client really went through the JSONP path.
  assert.ok(front.stats.paths.some((p) => /^GET \/lp\/psbrowser\?.*callback=/.test(p)), "a JSONP poll");
});

test("Nchan: EventSource, WebSocket (ws+meta.nchan) and NchanSubscriber.js (eventsource, websocket, longpoll)", async () => {
  const front = await frontFor(NCHAN_ADDR);
  const page = await openPage(await browser.newContext(), `${front.url}/compat.html`);
  const channel = "nchanbrowser";
  await page.evaluate((c) => {
    window.nchanEventSource("es", c);
    window.nchanWebSocket("ws", c);
    window.nchanSubscriber("sub-es", c, "eventsource");
    window.nchanSubscriber("sub-ws", c, "websocket");
    window.nchanSubscriber("sub-lp", c, "longpoll");
  }, channel);
  const text = (i) => `n${i} ✓ <b>&`;
  const recs = await deliverAndResume({
    addr: NCHAN_ADDR,
    channel,
    front,
    page,
    names: ["es", "ws", "sub-es", "sub-ws", "sub-lp"],
    streams: ["es", "ws", "sub-es", "sub-ws"],
    publish: async (i) => {
      const res = await fetch(`http://${NCHAN_ADDR}/pub?id=${channel}`, {
        method: "POST",
        body: text(i),
        headers: { "Content-Type": "text/plain" },
      });
      assert.ok([201, 202].includes(res.status), `publish: ${res.status}`);
    },
    text,
  });
  const page2 = await readAll(page, ["ws", "sub-ws", "sub-lp"]);
  assert.equal(page2.ws.protocol, "ws+meta.nchan");
  // Nchan's TIME:ID ids, on every transport.
  for (const k of ["es", "ws", "sub-es", "sub-ws", "sub-lp"]) {
    for (const id of recs[k].ids) assert.match(id, /^\d+:\d+$/, `${k} id ${id}`);
  }
  assert.equal(page2["sub-lp"].transport, "longpoll");
});
