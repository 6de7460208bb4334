// Small loopback servers the browser cases need besides crier itself.
//
// `startFront` is one HTTP server that can play several parts:
// - a web origin: serves /crier.js, /demo, /dashboard (and /test.html)
//   from the repository, as crier will once they are wired in;
// - a reverse proxy in front of crier (HTTP streaming and WebSocket
//   upgrades), which can cut every connection at once (`cut()`), refuse
//   upgrades (a proxy that breaks WebSocket) or hold them forever;
// - a mock that answers every subscribe request with one status (403).
// It counts requests and upgrades so cases can tell what a client tried.
import http from "node:http";
import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

// What crier will serve from these files (the lead wires them in src/).
const WEB_FILES = {
  "/crier.js": ["clients/js/crier.js", "application/javascript; charset=utf-8"],
  "/demo": ["web/demo.html", "text/html; charset=utf-8"],
  "/dashboard": ["web/dashboard.html", "text/html; charset=utf-8"],
  // Not served by crier: the empty page the client cases run in.
  "/test.html": ["tests/browser/pages/test.html", "text/html; charset=utf-8"],
};

const SUBSCRIBE_RE = /^\/(ev|ws|lp|sub)\//;
// Hop-by-hop headers belong to one connection, not to the message.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"]);

/**
 * options:
 *   upstream: "127.0.0.1:PORT" of crier to proxy to (none: static/mock only)
 *   web: serve WEB_FILES (default true)
 *   rejectUpgrades: destroy every WebSocket upgrade request
 *   holdUpgrades: accept the upgrade request's socket and never answer
 *   denyStatus: answer every subscribe request and upgrade with it
 *   handle: (req, res) => bool: a case's own answers; true when handled
 *   mockStatus: (n) => doc: answer GET /status with doc, and serve the
 *     status stream crier is to get, GET /ev/$status (event "status", one
 *     document every 300 ms), for the dashboard
 */
export async function startFront(options = {}) {
  const opts = { web: true, ...options };
  const sockets = new Set();
  const stats = { requests: 0, upgrades: 0, subscribes: 0, paths: [] };
  const track = (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  };

  const server = http.createServer((req, res) => {
    stats.requests++;
    stats.paths.push(req.method + " " + req.url);
    const pathname = req.url.split("?")[0];
    if (SUBSCRIBE_RE.test(pathname)) stats.subscribes++;
    if (opts.denyStatus && SUBSCRIBE_RE.test(pathname)) {
      const body = JSON.stringify({ error: "denied by the test mock", status: opts.denyStatus });
      res.writeHead(opts.denyStatus, {
        "Content-Type": "application/json",
        "Access-Control-Allow-Origin": "*",
        "Content-Length": Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    if (opts.handle && opts.handle(req, res)) return;
    if (opts.mockStatus && (pathname === "/status" || pathname === "/ev/$status")) {
      serveMockStatus(pathname, res);
      return;
    }
    if (opts.web && WEB_FILES[pathname]) {
      const [file, type] = WEB_FILES[pathname];
      // Read on every request so a page edited meanwhile is served fresh.
      const body = fs.readFileSync(path.join(ROOT, file));
      res.writeHead(200, { "Content-Type": type, "Content-Length": body.length, "Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*" });
      res.end(body);
      return;
    }
    if (!opts.upstream) {
      res.writeHead(404, { "Content-Type": "text/plain", "Access-Control-Allow-Origin": "*" });
      res.end("not found");
      return;
    }
    proxy(req, res);
  });

  let statusCount = 0;
  function serveMockStatus(pathname, res) {
    const cors = { "Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache" };
    if (pathname === "/status") {
      res.writeHead(200, { "Content-Type": "application/json", ...cors });
      res.end(JSON.stringify(opts.mockStatus(statusCount++)));
      return;
    }
    res.writeHead(200, { "Content-Type": "text/event-stream", ...cors });
    res.write("retry: 3000\n\n");
    const send = () => res.write(`event: status\ndata: ${JSON.stringify(opts.mockStatus(statusCount++))}\n\n`);
    send();
    const timer = setInterval(send, 300);
    res.on("close", () => clearInterval(timer));
  }

  function proxy(req, res) {
    const [host, port] = opts.upstream.split(":");
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    headers.connection = "close";
    const up = http.request({ host, port: Number(port), method: req.method, path: req.url, headers, agent: false });
    up.on("socket", (s) => {
      track(s);
      s.setNoDelay(true);
    });
    up.on("response", (ur) => {
      const out = {};
      for (const [k, v] of Object.entries(ur.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(ur.statusCode, out);
      res.flushHeaders();
      ur.pipe(res);
      ur.on("error", () => res.destroy());
    });
    up.on("error", () => {
      if (!res.headersSent) {
        res.writeHead(502, { "Content-Type": "text/plain", "Access-Control-Allow-Origin": "*" });
        res.end("upstream unreachable");
      } else {
        res.destroy();
      }
    });
    res.on("close", () => up.destroy());
    req.pipe(up);
  }

  server.on("connection", (s) => {
    track(s);
    s.setNoDelay(true);
  });

  server.on("upgrade", (req, socket, head) => {
    stats.requests++;
    stats.upgrades++;
    stats.subscribes++;
    stats.paths.push("UPGRADE " + req.url);
    if (opts.denyStatus) {
      socket.end(`HTTP/1.1 ${opts.denyStatus} Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    if (opts.rejectUpgrades) {
      socket.destroy();
      return;
    }
    if (opts.holdUpgrades || !opts.upstream) return;
    const [host, port] = opts.upstream.split(":");
    const up = net.connect(Number(port), host);
    track(up);
    up.setNoDelay(true);
    let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    up.write(raw + "\r\n");
    if (head && head.length) up.write(head);
    up.pipe(socket);
    socket.pipe(up);
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
    up.on("close", () => socket.destroy());
    socket.on("close", () => up.destroy());
  });

  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    /** Destroys every open connection, both sides, like a network cut. */
    cut() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
