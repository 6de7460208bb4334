#!/usr/bin/env python3
"""Mint a crier channel token (docs/TOKENS.md) with the standard library only.

usage: python3 mint.py KEY CHANNELS PUBLISH TTL
  e.g. python3 mint.py "$CRIER_KEY" 'news,chat-*' 'chat-*' 3600
  (PUBLISH may be '' for a subscribe-only token)
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(key: str, channels: list, publish: list, ttl: int) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"exp": int(time.time()) + ttl, "channels": channels}
    if publish:
        claims["publish"] = publish
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print("usage: python3 mint.py KEY CHANNELS PUBLISH TTL", file=sys.stderr)
        sys.exit(2)
    key, channels, publish, ttl = sys.argv[1:]
    channels = [c for c in channels.split(",") if c]
    publish = [c for c in publish.split(",") if c]
    print(mint(key, channels, publish, int(ttl)))
