#!/usr/bin/env python3
"""Publish to crier with Python's standard library: every message over one
kept-alive connection. Prints each message's id.

    CRIER_URL=http://127.0.0.1:8080 CRIER_PUBLISH_SECRET=... python3 publish.py CHANNEL MESSAGE...
"""
import http.client
import json
import os
import sys
import urllib.parse

url = urllib.parse.urlsplit(os.environ.get("CRIER_URL", "http://127.0.0.1:8080"))
Connection = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
conn = Connection(url.hostname, url.port, timeout=10)  # reused by every publish()
headers = {"Content-Type": "text/plain; charset=utf-8"}
if os.environ.get("CRIER_PUBLISH_SECRET"):
    headers["Authorization"] = "Bearer " + os.environ["CRIER_PUBLISH_SECRET"]


def publish(channel, message):
    path = f"{url.path.rstrip('/')}/pub?id={urllib.parse.quote(channel)}"
    for attempt in (1, 2):
        try:
            conn.request("POST", path, body=message.encode(), headers=headers)
            reply = conn.getresponse()
            body = reply.read().decode()  # read it all, or the connection is not reused
            break
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()  # crier closed it while idle (idle-timeout): reconnect once
            if attempt == 2:
                raise
    if reply.status != 200:
        raise RuntimeError(f"publish to {channel}: HTTP {reply.status} {body}")
    return json.loads(body)  # {"channel":…,"id":…,"subscribers":…,…}


channel, *messages = sys.argv[1:]
for message in messages:
    print(publish(channel, message)["id"])
