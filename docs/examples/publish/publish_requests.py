#!/usr/bin/env python3
"""Publish to crier with requests: a Session keeps the connection alive.

    pip install requests
    CRIER_URL=http://127.0.0.1:8080 CRIER_PUBLISH_SECRET=... python3 publish_requests.py CHANNEL MESSAGE...
"""
import os
import sys

import requests

base = os.environ.get("CRIER_URL", "http://127.0.0.1:8080").rstrip("/")
session = requests.Session()  # one per process: its pool keeps connections alive
session.headers["Content-Type"] = "text/plain; charset=utf-8"
if os.environ.get("CRIER_PUBLISH_SECRET"):
    session.headers["Authorization"] = "Bearer " + os.environ["CRIER_PUBLISH_SECRET"]


def publish(channel, message):
    reply = session.post(f"{base}/pub", params={"id": channel}, data=message.encode(), timeout=10)
    reply.raise_for_status()
    return reply.json()  # {"channel":…,"id":…,"subscribers":…,…}


channel, *messages = sys.argv[1:]
for message in messages:
    print(publish(channel, message)["id"])
