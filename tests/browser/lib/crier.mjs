// The crier under test, as the Rust harness (tests/browser.rs) started it:
// CRIER_ADDR is its address, CRIER_CONTROL a loopback port where a line
// "restart term" (SIGTERM: graceful drain) or "restart kill" (SIGKILL: a
// crash) makes the harness restart it on the same port; it answers "ok".
import net from "node:net";

export const CRIER_ADDR = process.env.CRIER_ADDR;
export const CRIER_URL = CRIER_ADDR ? `http://${CRIER_ADDR}` : null;

/** Publishes like a backend does; resolves the JSON reply. */
export async function publish(channel, body, headers = {}) {
  const res = await fetch(`${CRIER_URL}/pub?id=${channel}`, { method: "POST", body, headers });
  if (!res.ok) throw new Error(`publish to ${channel}: ${res.status} ${await res.text()}`);
  return res.json();
}

export async function status() {
  const res = await fetch(`${CRIER_URL}/status`);
  return res.json();
}

/** Asks the harness to restart crier; resolves once it serves again. */
export function restartCrier(mode) {
  const control = process.env.CRIER_CONTROL;
  if (!control) {
    throw new Error("CRIER_CONTROL is not set: run this suite with `cargo test --release --test browser`");
  }
  const [host, port] = control.split(":");
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), host, () => sock.write(`restart ${mode}\n`));
    let answer = "";
    sock.on("data", (d) => {
      answer += d;
      if (answer.includes("\n")) {
        sock.end();
        if (answer.startsWith("ok")) resolve();
        else reject(new Error(`restart ${mode}: ${answer.trim()}`));
      }
    });
    sock.on("error", reject);
  });
}
