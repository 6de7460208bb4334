#!/usr/bin/env node
// Mint a crier channel token (docs/TOKENS.md) with Node's standard library only.
//
// usage: node mint.js KEY CHANNELS PUBLISH TTL
//   e.g. node mint.js "$CRIER_KEY" 'news,chat-*' 'chat-*' 3600
//   (PUBLISH may be '' for a subscribe-only token)
"use strict";
const crypto = require("node:crypto");

function b64url(text) {
  return Buffer.from(text).toString("base64url"); // unpadded
}

function mint(key, channels, publish, ttl) {
  const header = { alg: "HS256", typ: "JWT" };
  const claims = { exp: Math.floor(Date.now() / 1000) + ttl, channels };
  if (publish.length > 0) claims.publish = publish;
  const signingInput = b64url(JSON.stringify(header)) + "." + b64url(JSON.stringify(claims));
  const signature = crypto.createHmac("sha256", key).update(signingInput).digest("base64url");
  return signingInput + "." + signature;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args.length !== 4) {
    console.error("usage: node mint.js KEY CHANNELS PUBLISH TTL");
    process.exit(2);
  }
  const [key, channels, publish, ttl] = args;
  const split = (text) => text.split(",").filter((c) => c !== "");
  console.log(mint(key, split(channels), split(publish), parseInt(ttl, 10)));
}

module.exports = { mint };
