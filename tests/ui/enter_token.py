#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol like a user of /ui on
a cluster with a token: opens the page, types the token into its prompt,
submits it, and waits for the page to list the storage nodes.

Usage: enter_token.py PAGE_URL TOKEN PROFILE_DIR
Prints one JSON object: {"rows": N, "error": TEXT, "prompt_hidden": BOOL,
"stored": BOOL}. Exits non-zero when the browser cannot be driven.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

import websocket  # websocket-client

TIMEOUT_S = 20


def main():
    page_url, token, profile = sys.argv[1:4]
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + TIMEOUT_S
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.monotonic() > deadline:
                sys.exit("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=TIMEOUT_S)
        ids = iter(range(1, 1_000_000))

        def call(method, **params):
            msg_id = next(ids)
            ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
            while True:
                reply = json.loads(ws.recv())
                if reply.get("id") == msg_id:
                    if "error" in reply:
                        sys.exit(f"{method}: {reply['error']}")
                    return reply.get("result", {})

        def evaluate(expression):
            result = call("Runtime.evaluate", expression=expression, returnByValue=True)
            return result.get("result", {}).get("value")

        call("Page.navigate", url=page_url)
        # The prompt shows once the API has refused the page without a token.
        while not evaluate("!document.getElementById('token-form').hidden"):
            if time.monotonic() > deadline:
                sys.exit("the token prompt never showed")
            time.sleep(0.1)
        before = evaluate("document.getElementById('error').textContent")
        evaluate(
            "document.getElementById('token').value = " + json.dumps(token) + ";"
            "document.getElementById('token-form').requestSubmit(); true")
        state = {}
        while time.monotonic() < deadline:
            state = evaluate(
                "({rows: document.querySelectorAll('#nodes tbody tr').length,"
                " error: document.getElementById('error').textContent,"
                " prompt_hidden: document.getElementById('token-form').hidden,"
                " stored: sessionStorage.getItem('dfs-token') !== null})")
            # Listed, or refused with a new message.
            if state["rows"] > 0 or state["error"] not in ("", before):
                break
            time.sleep(0.1)
        print(json.dumps(state))
    finally:
        browser.kill()
        browser.wait()


if __name__ == "__main__":
    main()
