#!/usr/bin/env python3
"""A tiny DNS server for the image smoke test (deploy/image/smoke.sh), standard library only.

    smoke-dns.py ADDR LOG

Listens on ADDR:53 (UDP) inside the smoke test's own network namespace and answers:
  * A    for *.amazonaws.com -> 127.0.0.1 (where the emulator listens, on port 443);
  * AAAA for *.amazonaws.com -> no records (NOERROR, empty answer);
  * anything else            -> NXDOMAIN.
Every query is appended to LOG as "QTYPE NAME", so the test can show that the proxy inside the
image resolved the S3 host names through DNS (the image's static glibc, /etc/nsswitch.conf and
/etc/resolv.conf), not through --resolve.
"""

import socket
import struct
import sys

QTYPES = {1: "A", 28: "AAAA"}


def parse_question(packet: bytes):
    labels, i = [], 12
    while packet[i] != 0:
        n = packet[i]
        labels.append(packet[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    i += 1
    qtype, qclass = struct.unpack("!HH", packet[i : i + 4])
    return ".".join(labels).lower(), qtype, qclass, packet[12 : i + 4]


def answer(packet: bytes) -> tuple[bytes, str]:
    (qid, flags) = struct.unpack("!HH", packet[:4])
    name, qtype, qclass, question = parse_question(packet)
    ours = name == "amazonaws.com" or name.endswith(".amazonaws.com")
    rd = flags & 0x0100
    records = b""
    if not ours:
        rcode, count = 3, 0  # NXDOMAIN
    elif qtype == 1 and qclass == 1:
        rcode, count = 0, 1
        # Name: pointer to the question (offset 12); type A, class IN, TTL 5s, 4 bytes.
        records = struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton("127.0.0.1")
    else:
        rcode, count = 0, 0  # NODATA
    header = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, count, 0, 0)
    return header + question + records, f"{QTYPES.get(qtype, qtype)} {name}"


def main() -> None:
    addr, log = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 53))
    with open(log, "a", buffering=1) as out:
        while True:
            packet, peer = sock.recvfrom(512)
            try:
                reply, line = answer(packet)
            except (IndexError, struct.error, UnicodeError):
                continue
            out.write(line + "\n")
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
