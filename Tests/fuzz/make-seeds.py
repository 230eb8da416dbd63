#!/usr/bin/python3
"""Writes the hand-made seed corpora of Tests/fuzz/corpus from the spec (golden outputs, window
vectors, the original's documents) and the syntax each parser documents. Seeds of the etcd
harnesses come from a real etcd instead: Tests/fuzz/capture-etcd-seeds.

Each seed is named after its content's SHA-1, as libFuzzer names corpus entries, so running this
again adds nothing twice. Run from anywhere: python3 Tests/fuzz/make-seeds.py
"""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "..", "..", "..", "shared", "spec")

SEMAPHORE = [
    # golden-outputs.md, "Stored bytes that must match"
    '{"semaphore":1,"max":1,"holders":null}',
    '{"semaphore":1,"max":1,"holders":[]}',
    '{"semaphore":0,"max":3,"holders":["a","b","node1"]}',
    '{"semaphore":-1,"max":2,"holders":["a","b","node1"]}',
    '{"semaphore":0,"max":0,"holders":null}',
    # behaviour.md: unknown fields ignored, missing fields read as 0, stored index ignored
    '{"semaphore":1,"max":1,"holders":null,"index":4567}',
    '{"max":2}',
    '{}',
    ' {\n  "Semaphore": 2,\n  "MAX": 3,\n  "Holders": ["69d27b356a94476da859461d3a3bc6fd"]\n}\n',
    '{"semaphore":1,"max":2,"holders":["69d27b356a94476da859461d3a3bc6fd"],"extra":{"a":[1,2.5,"x",true,null]}}',
    '{"semaphore":2147483647,"max":2147483647,"holders":null}',
    '{"semaphore":-2147483648,"max":0,"holders":null}',
    '{"semaphore":2147483648,"max":1,"holders":null}',
    '{"semaphore":99999999999999999999,"max":1,"holders":null}',
    '{"semaphore":1.5,"max":1,"holders":null}',
    '{"semaphore":1,"max":1,"holders":["a","a"]}',
    '{"semaphore":1,"max":1,"holders":["caf\\u00e9","cafe\\u0301","\\ud83d\\ude00","<&>"]}',
    '{"semaphore":1,"max":1,"holders":["a\\u0000b"]}',
    '{"semaphore":1,"max":1,"holders":[1]}',
    '{"semaphore":1,"max":1,"holders":"a"}',
    '{"semaphore":1,"max":1,"holders":null,"x":1e400,"y":-0.0,"z":"\\u2028\\/"}',
    '{"semaphore":1,"semaphore":2,"max":1}',
    "{'semaphore':1}",
    '{"semaphore":1,}',
    '[1,2]',
    'null',
    '"text"',
    '',
]

JSON = SEMAPHORE + [
    '[]', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', '0', '-0', '1E+2', '-1.25e-7',
    'true', 'false', '"\\u00e9\\ud800\\udc00\\n\\t\\"\\\\\\/"', '{"a":{"b":{"c":[{"d":null}]}}}',
    '{"node":{"value":"v","modifiedIndex":"12"},"errorCode":"100"}', ' \t\r\n{} \n', '01', '1.', '.5', '+1',
    '[1,]', '{"a"}', '"\x01"', 'nul', '[1 2]', '"\\x"', '"\\u12"', 'NaN', 'Infinity', '/* c */ {}',
    '{"a":1}{"b":2}', '"caf\xc3\xa9"', '"\xed\xa0\x80"', '"\xc0\x80"', '123456789012345678901234567890',
]

DURATION = [
    "0", "+0", "-0", "1ns", "1us", "1\u00b5s", "1\u03bcs", "1ms", "1s", "1m", "1h", "1h30m", "1h30m0s",
    "45m", "1.5h", "300ms", "-2s", "-1.5h", "2h45m", "10s", "23h59m59s", "167h59m", ".5s", "5.s", "1.000000001s",
    "0.1h", "1.5\u00b5s", "9223372036854775807ns", "9223372036854775808ns", "-9223372036854775808ns",
    "2562047h47m16.854775807s", "-2562047h47m16.854775808s", "2562048h", "0.0000000000000000001h",
    "0.3333333333333333333h", "1h-1m", "1", "h", ".", ".s", "1.5", "1x", "1hh", "", "+", "-", "1e3s", " 1s", "1s ",
]

WINDOW_EXTRA = [
    ("14:00", "24h"), ("Sun 14:00", "168h"), ("", "1h"), ("14:00", ""), ("1:2:3", "1h"), ("-1:00", "1h"),
    ("Thursday 14:00", "1h"), ("THU  9:05", "167h59m"), ("00:00", "0"), ("23:59", "23h59m59s"),
    ("sat 23:59", "167h59m59.999999999s"), ("0000:0000", "1h"), ("\u0661\u0662:00", "1h"), ("Mon\t02:00", "30m"),
    ("02:30", "1h"),
]
WINDOW_NOWS = ["1432191600", "1425808800", "1446368400", "-62135596800", "253402300799", "253402300800", "0"]

ENVFILE = [
    "REBOOT_STRATEGY=etcd-lock\nGROUP=lb\nLOCKSMITHD_REBOOT_WINDOW_START=\"Thu 23:00\"\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m\nEMPTY=\n",
    "GROUP=stable\nSERVER=https://public.update.flatcar-linux.net/v1/update/\nREBOOT_STRATEGY=reboot\n",
    "REBOOT_STRATEGY=best-effort\nREBOOT_WINDOW_START=Sun 02:00\nREBOOT_WINDOW_LENGTH=2h\n",
    "LOCKSMITHD_REBOOT_WINDOW_START=14:00\n",
    "REBOOT_WINDOW_LENGTH=1h\nLOCKSMITHD_REBOOT_BROADCAST_DELAY=-5m\nREBOOT_STRATEGY=sometimes\n",
    "LOCKSMITHD_REBOOT_BROADCAST_DELAY=30s\nLOCKSMITHD_ETCD_API=v3\nLOCKSMITHD_ENDPOINT=http://127.0.0.1:2379,http://10.0.0.2:2379\n",
    "A=\"Thu 23:00\"", "A='single \\n \"kept\"'", "A=\"esc \\\" \\\\ \\$ \\` \\n\"", "A=\"x\" 'y'z",
    "A=  \"  padded  \"  ", "A=mid\"quote", "A=\"unterminated", "A='unterminated", "A=one\\\ntwo\nB=2", "A=a\\ b",
    "A=trailing\\ ", "A=\"multi\nline\"", "# comment \\\nB=hidden\nC=3", "; comment\n  # indented\nD=4",
    "A=1\r\nA=2\r\n", "no equals here\n1BAD=x\nGOOD=y\nBAD-NAME=z\n", " KEY = value with  blanks  \n",
    "_x_1=\u00e9\u00e8\n", "A=\\", "A=\"\\", "=novalue\n", "A B=1\n", "\n\n\nX\n",
]

GROUPKEY = [
    "", "a b/c", "prod/database", "lb", "stable", "caf\u00e9", "\u65e5\u672c", "a+b", "%41", "%", "%4", "%zz",
    "~-._", "!*'();:@&=+$,/?#[]", "\t\n", "coreos.com/updateengine/rebootlock/semaphore",
    "/coreos.com/updateengine/rebootlock/semaphore",
    "coreos.com/updateengine/rebootlock/groups/a+b%2Fc/semaphore",
    "coreos.com/updateengine/rebootlock/groups/%FF/semaphore",
    "coreos.com/updateengine/rebootlock/groups//semaphore",
    "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "Zm9vYg", "A", "A===", "=A", "eyJzZW1hcGhvcmUiOjF9",
    "x" * 255, "x" * 256,
]


def write(harness, items):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    n = 0
    for item in items:
        data = item if isinstance(item, bytes) else item.encode("utf-8", "surrogateescape")
        path = os.path.join(d, hashlib.sha1(data).hexdigest())
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            n += 1
    print(f"{harness}: {n} new seeds, {len(os.listdir(d))} in all")


def window_seeds():
    items = []
    with open(os.path.join(SPEC, "test-vectors", "window.tsv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            start, length, now = line.rstrip("\n").split("\t")[:3]
            items.append(f"{start}\t{length}\t{now if now != '-' else ''}")
    for i, (start, length) in enumerate(WINDOW_EXTRA):
        items.append(f"{start}\t{length}\t{WINDOW_NOWS[i % len(WINDOW_NOWS)]}")
    return items


def latin1(items):
    # Seeds are bytes: the \xNN above stand for raw bytes, not for code points.
    return [s.encode("latin-1") if all(ord(c) < 256 for c in s) and any(0x80 <= ord(c) for c in s) else s for s in items]


write("semaphore", latin1(SEMAPHORE))
write("json", latin1(JSON))
write("duration", DURATION)
write("window", window_seeds())
write("envfile", ENVFILE)
write("groupkey", GROUPKEY)
