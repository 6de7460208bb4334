// Publish to crier from Node 18+ with fetch, which keeps connections alive.
// Prints each message's id.
//   CRIER_URL=http://127.0.0.1:8080 CRIER_PUBLISH_SECRET=... node publish.mjs CHANNEL MESSAGE...
const base = (process.env.CRIER_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const headers = { "Content-Type": "text/plain; charset=utf-8" };
if (process.env.CRIER_PUBLISH_SECRET) {
  headers.Authorization = `Bearer ${process.env.CRIER_PUBLISH_SECRET}`;
}

async function publish(channel, message) {
  const res = await fetch(`${base}/pub?id=${encodeURIComponent(channel)}`, {
    method: "POST",
    headers,
    body: message,
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text(); // read it all, or the connection is not reused
  if (!res.ok) throw new Error(`publish to ${channel}: HTTP ${res.status} ${body}`);
  return JSON.parse(body); // {"channel":…,"id":…,"subscribers":…,…}
}

const [channel, ...messages] = process.argv.slice(2);
for (const message of messages) {
  console.log((await publish(channel, message)).id);
}
