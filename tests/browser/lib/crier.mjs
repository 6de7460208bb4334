// The crier under test, as the Rust harness (tests/browser.rs) started it:
// CRIER_ADDR is its address, CRIER_CONTROL a loopback port where a line
// "restart term" (SIGTERM: graceful drain) or "restart kill" (SIGKILL: a
// crash) makes the harness restart it on the same port; it answers "ok".
// CRIER_BACKPLANE_ADDR is a second crier, started with --redis on a
// redis-server of the harness' own (BACKPLANE_REDIS_URL), which the lines
// "redis stop" and "redis start" kill and start again.
import net from "node:net";

export const CRIER_ADDR = process.env.CRIER_ADDR;
export const CRIER_URL = CRIER_ADDR ? `http://${CRIER_ADDR}` : null;
export const BACKPLANE_ADDR = process.env.CRIER_BACKPLANE_ADDR;
export const BACKPLANE_URL = BACKPLANE_ADDR ? `http://${BACKPLANE_ADDR}` : null;
export const BACKPLANE_REDIS_URL = process.env.BACKPLANE_REDIS_URL;

/** Publishes like a backend does; resolves the JSON reply. */
export async function publish(channel, body, headers = {}) {
  return publishTo(CRIER_URL, channel, body, headers);
}

/** `publish` to the crier at `base`. */
export async function publishTo(base, channel, body, headers = {}) {
  const res = await fetch(`${base}/pub?id=${channel}`, { method: "POST", body, headers });
  if (!res.ok) throw new Error(`publish to ${channel}: ${res.status} ${await res.text()}`);
  return res.json();
}

export async function status() {
  const res = await fetch(`${CRIER_URL}/status`);
  return res.json();
}

/** Asks the harness to restart crier; resolves once it serves again. */
export function restartCrier(mode) {
  return control(`restart ${mode}`);
}

/** Asks the harness to "stop" (SIGKILL) or "start" the backplane crier's
 * redis-server; resolves once it is gone, or listening again. */
export function redisServer(what) {
  return control(`redis ${what}`);
}

/** Sends one line to the harness' control port; resolves on "ok". */
function control(line) {
  const addr = process.env.CRIER_CONTROL;
  if (!addr) {
    throw new Error("CRIER_CONTROL is not set: run this suite with `cargo test --release --test browser`");
  }
  const [host, port] = addr.split(":");
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), host, () => sock.write(`${line}\n`));
    let answer = "";
    sock.on("data", (d) => {
      answer += d;
      if (answer.includes("\n")) {
        sock.end();
        if (answer.startsWith("ok")) resolve();
        else reject(new Error(`${line}: ${answer.trim()}`));
      }
    });
    sock.on("error", reject);
  });
}
