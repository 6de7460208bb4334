#!/usr/bin/env python3
"""Writes the seed inputs, fuzz/seeds/<target>/seed-*, in each driver's
input layout (src/fuzz/): a few realistic inputs per target. Run once;
afl-cmin then keeps what adds coverage."""
import base64, hashlib, hmac, json, os, struct, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")

def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

# http_request: setup a (limits), setup b (channel cap, every body, request
# line limit: 0 in bits 5-7 is 8192), split seed.
HTTP = {
    "get": b"GET /ev/news HTTP/1.1\r\nHost: x\r\n\r\n",
    "publish-length": b"POST /pub?id=news HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nEvent-Type: score\r\n\r\nhello",
    "publish-chunked": b"POST /pub?id=a/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
    "pipelined": b"POST /pub?id=a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiPUT /pub?id=b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET /status HTTP/1.1\r\n\r\nGET /pub?id=a HTTP/1.1\r\nConnection: close\r\n\r\n",
    "expect": b"POST /pub?id=c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "http10": b"\r\nGET /sub/x?since=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "errors": b"DELETE /pub?id=bad%20id HTTP/1.1\r\n\r\nOPTIONS /ws/a HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx",
}
for i, (name, req) in enumerate(HTTP.items()):
    write("http_request", name, bytes([0x2F if i % 2 else 0x3B, 0x0F | (0x10 * (i % 2)), i]) + req)

# route: setup (cap, compat mode, raw bit), channel-id limit (128 - low 7
# bits; bit 7 admin publisher), then method, presence, target\nvalue\n...
ROUTE = [
    (0, 0, b"/ev/news.b5/sport/news"),
    (2, 4, b"/pub?id=a/b/a"),
    (0, 1, b"/ev/a?last_event_id=5&since=9\n7"),
    (0, 2, b"/lp/x.b0.b12?format=json\n\nW/\"12\""),
    (1, 0, b"/pub?id=c"),
    (5, 0, b"/sub/v1.beta"),
    (0, 0, b"/status?id=c"),
    (0, 0, b"http://host/ws/a%41?since=17"),
]
# Id limits: the default 128 (a zero byte), and 127, 8, 1.
for i, (m, p, rest) in enumerate(ROUTE):
    write("route", f"req{i}", bytes([15, [0, 1, 120, 127][i % 4], m, p]) + rest)
# Compatibility modes (setup bits 5-6: 1 push-stream, 2 Nchan, 3 Nchan on
# /ps); presence bits: 0 Last-Event-ID, 1 If-None-Match, 2 Content-Length,
# 3 Accept, 4 If-Modified-Since, 5 X-Nginx-PushStream-Mode, 6 Upgrade, 7 TE.
def fields(target, **v):
    names = ["lei", "inm", "cl", "accept", "ims", "mode", "upgrade", "te"]
    return target + b"".join(b"\n" + v.get(n, b"") for n in names)
COMPAT = [
    ("ps-stats", 1 << 5, 0, 0, 0, b"/channels-stats?id=ALL"),
    ("ps-delete-admin", 1 << 5, 0x80, 4, 0, b"/pub?id=a/b"),
    ("ps-poll", 1 << 5, 0, 0, 0x32, fields(b"/sub/a.b2?callback=cb", inm=b"W/5", ims=b"Thu, 01 Jan 2026 00:00:00 GMT", mode=b"polling")),
    ("nchan-pub", 2 << 5, 0, 2, 0x04, fields(b"/pub/a,b")),
    ("nchan-sse", 2 << 5, 0, 0, 0x09, fields(b"/sub?id=x", lei=b"1700000000:3", accept=b"text/event-stream")),
    ("nchan-pubsub-ws", 3 << 5, 0, 0, 0xC0, fields(b"/ps/a/b/", upgrade=b"websocket", te=b"chunked;q=0")),
]
for name, setup, idb, m, p, rest in COMPAT:
    write("route", name, bytes([15 | setup, idb, m, p]) + rest)
write("route", "raw", bytes([0x8F, 0]) + b"GET /ev/a/b.b3 HTTP/1.1\r\nLast-Event-ID: 42\r\nIf-None-Match: \"7\"\r\n\r\n")

# ws_frames: setup (deflate, max, built), split seed, data.
MASK = b"\x37\xfa\x21\x3d"
def frame(fin, rsv1, op, payload, mask=MASK):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op
    n = len(payload)
    if n < 126: hdr = bytes([b0, 0x80 | n])
    elif n < 65536: hdr = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else: hdr = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
def deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]
text = "héllo ☃".encode()
raw = frame(False, False, 1, b"fra") + frame(True, False, 9, b"ping") + frame(True, False, 0, b"gment") \
    + frame(True, False, 2, bytes(range(200))) + frame(True, False, 10, b"") + frame(True, False, 1, text) \
    + frame(True, False, 8, b"\x03\xe8bye")
write("ws_frames", "raw", bytes([3 << 1, 3]) + raw)
z = deflate(b"hello hello hello compressed " * 20)
write("ws_frames", "deflate", bytes([1 | 5 << 1, 7]) + frame(False, True, 1, z[:10]) + frame(True, False, 9, b"x") + frame(True, False, 0, z[10:]) + frame(True, True, 2, deflate(bytes(300))))
# 16-bit length, and a non-minimal 64-bit length (allowed).
long64 = bytes([0x82, 0xFF]) + struct.pack(">Q", 5) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(b"five!"))
write("ws_frames", "lengths", bytes([5 << 1, 6]) + frame(True, False, 2, b"\x07" * 300, b"\0\0\0\0") + long64)
write("ws_frames", "small-max", bytes([1 << 1, 0]) + frame(True, False, 1, b"0123456789abcdefXYZ"))
# Built messages: flags (kind, fragments, compress, ping, mask), u16 len (+repeat), [mask], payload.
def msg(flags, payload, repeat=0, mask=None):
    b = bytes([flags | (0x80 if mask else 0)]) + struct.pack("<H", len(payload) | repeat << 14)
    return b + (mask or b"") + payload
built = msg(0, "κόσμε".encode()) + msg(1 | 2 << 3 | 0x40, bytes(range(40)), mask=MASK) + msg(2, b"p") + msg(4, b"\x00done")
write("ws_frames", "built", bytes([0x10 | 4 << 1, 2]) + built)
built_z = msg(0 | 0x20 | 1 << 3 | 0x40, b"compress me please ", repeat=2) + msg(1 | 0x20, b"\0" * 50, repeat=3) + msg(5, b"")
write("ws_frames", "built-deflate", bytes([0x11 | 6 << 1, 5]) + built_z)

# handshake: mode, presence, fields (upgrade, connection, key, version, protocol, extensions).
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
fields = [b"websocket", b"keep-alive, Upgrade", KEY, b"13", b"chat, crier.json", b"permessage-deflate; client_max_window_bits; server_max_window_bits=10"]
write("handshake", "fields", bytes([0, 0x3F]) + b"\n".join(fields))
write("handshake", "fields-bad", bytes([1, 0x1B]) + b"\n".join([b"h2c", b"close", b"c2hvcnQ=", b"8", b"", b""]))
write("handshake", "fields-deflate", bytes([0, 0x2F]) + b"\n".join([b"WebSocket", b"Upgrade", b" " + KEY + b" ", b" 13 ", b"", b"x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover; server_max_window_bits=\"12\", permessage-deflate"]))
req = b"GET /ws/news?format=json HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: crier.json\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
write("handshake", "raw", bytes([0x83]) + req + frame(True, False, 1, b"hi") + frame(True, True, 1, deflate(b"hi hi hi hi hi")) + frame(True, False, 8, b""))

# token: mode, u16 clock offset, 4 flip bytes, data.
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=")
KEY_A = b"fuzz-key-a-0123456789-0123456789-0123456789"
NOW = 1_700_000_000
def signed(key, header, claims):
    s = b64(json.dumps(header, separators=(",", ":")).encode()) + b"." + b64(json.dumps(claims, separators=(",", ":")).encode())
    return s + b"." + b64(hmac.new(key, s, hashlib.sha256).digest())
clock = struct.pack("<H", 1 << 15)
tok = signed(KEY_A, {"alg": "HS256", "typ": "JWT"}, {"exp": NOW + 600, "channels": ["news", "chat-*"], "publish": ["chat-*"]})
write("token", "raw-valid", bytes([0]) + clock + b"\0\0\0\0" + tok)
write("token", "raw-none", bytes([0]) + clock + b"\0\0\0\0" + b64(b'{"alg":"none"}') + b"." + b64(b'{"exp":1}') + b".")
write("token", "json", bytes([1]) + clock + b"\x01\0\0\0" + b'{"alg":"HS256","typ":"JWT"}\n{"exp":1700000600,"nbf":1699999999,"channels":["a","b-*","*"],"publish":[]}')
write("token", "json-bad", bytes([5]) + clock + b"\0\0\0\x80" + b'{"alg":"HS256","crit":["x"]}\n{"exp":1.5,"channels":"news"}')
write("token", "minted", bytes([2 | 8]) + clock + b"\0\x02\0\0" + struct.pack("<H", (1 << 15) + 600) + struct.pack("<H", (1 << 15) - 10) + b"user-1\nnews\n~chat-\n+~chat-\n~")
write("token", "minted-bad", bytes([2 | 0x20]) + clock + b"\0\0\0\0" + struct.pack("<H", 1 << 15) + b"\0\0" + b"\nbad/chan\na*\n+")
write("token", "edited", bytes([3]) + clock + b"\0\0\0\0" + b"\x00\x10\x00A\x01\x20\x00.")
