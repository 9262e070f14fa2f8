#!/usr/bin/env python3
"""seeds.py — (re)write the hand-made seed inputs of tests/fuzz/corpus/NAME/
(files named seed-*): the vectors of the unit and integration tests
(tests/unit/test_http1.c, tests/integration/test_smuggling.py,
tests/unit/test_control.c), tests/configs/, plus a few shapes of each
format. Inputs the fuzzers found (crash-*, found-*) are kept as they are.
Run from anywhere: python3 tests/fuzz/seeds.py
"""
import glob
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def smuggling_shapes():
    """The raw requests of test_smuggling.py's `shapes` table."""
    text = open(os.path.join(ROOT, "tests/integration/test_smuggling.py")).read()
    block = text[text.index("shapes = ["):]
    block = block[:block.index("\n]\n") + 3]
    env = {"H": "Host: x\r\n"}
    exec(block, env)
    return [raw for _, raw, _ in env["shapes"]]


H = "Host: a\r\n"
REQUESTS = [
    "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET",
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\nhello world!",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET x HTTP/1.1\r\nHost: a\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST http://h/p?q HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
    "X-Forwarded-For: 2.2.2.2\r\nConnection: X-Drop\r\nX-Drop: 1\r\nVia: 1.0 edge\r\n"
    "Transfer-Encoding: chunked\r\nUpgrade: h2c\r\n\r\n",
    "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
    "DELETE /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, te, x-a\r\nTE: trailers\r\nX-A: 1\r\n"
    "Keep-Alive: 5\r\nProxy-Connection: close\r\nTrailer: X\r\n\r\n",
    "GET /?a=1&b=%20 HTTP/1.1\r\nHost: a:8080\r\nCookie: weir=abc; x=y\r\nX-Canary: always\r\n"
    "X-Forwarded-Proto: https\r\nVia: 1.1 a, 1.1 b\r\nVia: 1.0 c\r\n\r\n",
    "HEAD / HTTP/1.1\r\nHost: a\r\nX:\r\nY:   spaced   \r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n" + "a:b\r\n" * 300 + "\r\n",
]

RESPONSES = [
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, X-Hop\r\n"
    "X-Hop: 1\r\nX-Weir-Version: spoofed\r\nX-App: 1\r\n\r\nabc",
    "HTTP/1.0 200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 100\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "HTTP/1.1 302 Found\r\nLocation: /x\r\nSet-Cookie: a=b\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/2.0 200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX-Version: v9\r\nTE: x\r\nTrailer: y\r\nKeep-Alive: 1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + "a:b\r\n" * 250 + "\r\n",
]

CHUNKED = [
    "4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT",
    "0\r\n\r\n",
    "0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "5\r\nhelloX\r\n",
    "g\r\n",
    "5\nhello\r\n",
    "5\r\nhello\r0\r\n",
    "zz\r\nhello\r\n0\r\n\r\n",
    "fffffffffffffffff\r\nx\r\n0\r\n\r\n",
    "5\r\nhelloX0\r\n\r\n",
    "5;" + "a" * 300 + "\r\nhello\r\n0\r\n\r\n",
    "A\r\n0123456789\r\n1;x=\"y\"\r\n!\r\n0\r\nA: b\r\nC: d\r\n\r\n",
    "000000000000004e\r\n" + "x" * 0x4e + "\r\n0\r\n\r\n",
    "3\r\nabc\r\n",
    "1\r\na\r\n0\r\n\tbad: trailer\r\n\r\n",
    "2\r\nab\r\n0\r\nX: " + "y" * 9000 + "\r\n\r\n",
]

CONTROL = [
    "status", "help", "version", "history", "flip", "rollback", "reload",
    "split v1=50 v2=50", "split v1=100", "split v1=50 v2=50 if-generation=1",
    "split v1=33.33 v2=66.67", "split v1=50 v2=50 if-generation=99999999999999999999",
    "drain v1 127.0.0.1:9001", "undrain v1 127.0.0.1:9001",
    "add-endpoint v2 127.0.0.1:9004 weight=2", "remove-endpoint v1 127.0.0.1:9002",
    "add-rule header=X-Beta value=1 version=v2", "add-rule cookie=beta value=yes version=v2 at=0",
    "remove-rule 0", "explain GET / \"X-Canary: always\"", "explain GET /x \"Cookie: weir_id=42\"",
    "explain GET / a\\b \"q\\\"x\"", "a \"b", "  \t ", "", "\xc3", "\xff status",
    "status\x01", "split v1=50 v2=50\nrollback\nhistory\nstatus",
    "add-endpoint v1 [::1]:80\ndrain v1 [::1]:80\nremove-endpoint v1 [::1]:80\nrollback\nrollback",
    "SPLIT V1=1 v2=99", "flip if-generation=1 if-generation=1",
]

JSON = [
    '{"ok":true,"split":{"v1":90.00,"v2":10.00},"generation":3}',
    '{"ok":false,"error":"unknown command \\"x\\" (try help)"}',
    '[]', '{}', '[1,-0,0.5e+10,-1E-3,1e400,"\\u0000\\ud83d\\ude00\\udc00\\ud800x"]',
    '"\\b\\f\\n\\r\\t\\/\\\\\\""', 'null', 'true', ' false ', '[' * 70 + ']' * 70,
    '{"a":{"b":[{"c":null}]},"a":1}', '"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"', '"\xff"',
    '01', '1.', '-', '{"a" 1}', '[1,]', '"\\u12"', '"\\x"',
]

STATE = [
    "weir-state 1\nsaved 1764340207123\n",
    "# weir runtime state\nweir-state 1\nsaved 5\n"
    "file split v1=90,v2=10\nfile endpoint/v1/127.0.0.1:9001 1\n"
    "file rules 1;h,X-Canary,always,v2\n"
    "change 1764340207123 split v1=50,v2=50\nchange 1764340207124 drain/v1/127.0.0.1:9001 1\n"
    "history 1764340207000 split%20v1=50%20v2=50\nwas split v1=90,v2=10\n"
    "history 1764340207100 \"\"\nwas endpoint/v1/127.0.0.1:9001 -\nwas drain/v2/x 1\n",
    "# comment\n\nweir-state 1\nfuture-kind x y z\nsaved 5\n",
    "weir-state 2\n", "not a state file\n", "weir-state 1\nfile k\n",
    "weir-state 1\r\nfile a%20b %25%0A\r\nchange -1 a b\r\n",
    "weir-state 1\nwas k v\n", "weir-state 1\nfile %00 x\n", "weir-state 1\nfile %zz x\n",
    "weir-state 1\nfile \"\" x\nfile k \"\"\n", "weir-state 1\n" + "history 1 h\nwas a b\n" * 70,
    "weir-state 1\nchange 99999999999999999999 k v\n", "\n\n\n",
]


def write(name, items):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "seed-*")):
        os.unlink(f)
    for i, data in enumerate(items):
        if isinstance(data, str):
            data = data.encode("latin-1")
        with open(os.path.join(d, "seed-%03d" % i), "wb") as f:
            f.write(data)


def main():
    write("http1_request", REQUESTS + smuggling_shapes())
    write("http1_response", RESPONSES)
    write("http1_chunked", CHUNKED)
    write("control", CONTROL)
    write("json", JSON)
    write("state", STATE)
    configs = sorted(glob.glob(os.path.join(ROOT, "tests/configs/*/*.yaml")))
    configs += [os.path.join(ROOT, "conf/weir.yaml")]
    write("config", [open(p, "rb").read() for p in configs if os.path.exists(p)])


if __name__ == "__main__":
    main()
