#!/usr/bin/env python3
"""make-dns-seeds.py - write the seed DNS answer packets of fuzz_dns and
fuzz_dns_ptr (tests/fuzz/corpus/NAME/*.bin), hand-built with struct:
MX with several preferences, null MX, CNAME chains, A/AAAA, PTR, truncated
and compressed packets.  Run from anywhere; rewrites the seeds."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
A, NS, CNAME, PTR, MX, AAAA = 1, 2, 5, 12, 15, 28


def name(n):
    if n in ("", "."):
        return b"\0"
    out = b""
    for label in n.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(qid, flags, qd, an, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(qname, qtype):
    return name(qname) + struct.pack("!HH", qtype, 1)


def rr(owner, rtype, rdata, ttl=300):
    o = owner if isinstance(owner, bytes) else name(owner)
    return o + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def mx(pref, host):
    return struct.pack("!H", pref) + (host if isinstance(host, bytes) else name(host))


def packet(qname, qtype, answers, rcode=0, tc=False, qid=0x1234):
    flags = 0x8180 | rcode | (0x0200 if tc else 0)
    return header(qid, flags, 1, len(answers)) + question(qname, qtype) + b"".join(answers)


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def ip6(s):
    import ipaddress
    return ipaddress.IPv6Address(s).packed


PTR_OF = "1.2.0.192.in-addr.arpa"
seeds = {
    "fuzz_dns": {
        "mx-three-prefs": packet("example.org", MX, [
            rr("example.org", MX, mx(20, "mx2.example.org")),
            rr("example.org", MX, mx(10, "MX1.Example.Org.")),
            rr("example.org", MX, mx(10, "mx1b.example.org")),
            rr("example.org", MX, mx(30, "backup.example.net"))]),
        # pointer to the question name at offset 12
        "mx-compressed": packet("example.org", MX, [
            rr(b"\xc0\x0c", MX, mx(5, b"\x04mail\xc0\x0c")),
            rr(b"\xc0\x0c", MX, mx(5, b"\x04mail\xc0\x0c"))]),
        "mx-null": packet("nomail.example", MX, [rr("nomail.example", MX, mx(0, "."))]),
        "mx-null-and-host": packet("mixed.example", MX, [
            rr("mixed.example", MX, mx(0, ".")),
            rr("mixed.example", MX, mx(10, "mx.mixed.example"))]),
        "mx-bad-name": packet("bad.example", MX, [
            rr("bad.example", MX, mx(10, "-bad-.example")),
            rr("bad.example", MX, mx(10, "[192.0.2.1]"))]),
        "mx-cname-chain": packet("alias.example", MX, [
            rr("alias.example", CNAME, name("alias2.example")),
            rr("alias2.example", CNAME, name("real.example")),
            rr("real.example", MX, mx(10, "mx.real.example"))]),
        "mx-nxdomain": packet("nx.example", MX, [], rcode=3),
        "mx-nodata": packet("a.example", MX, []),
        "mx-truncated": packet("example.org", MX, [
            rr("example.org", MX, mx(10, "mx1.example.org"))], tc=True)[:-9],
        "mx-pointer-loop": header(1, 0x8180, 1, 1) + b"\xc0\x0c\x00\x0f\x00\x01"
        + b"\xc0\x0c" + struct.pack("!HHIH", MX, 1, 60, 4) + b"\x00\x0a\xc0\x0c",
        "a-records": packet("mx.example.org", A, [
            rr("mx.example.org", A, ip4("192.0.2.10")),
            rr("mx.example.org", A, ip4("0.0.0.0")),
            rr("mx.example.org", A, ip4("224.0.0.1")),
            rr("mx.example.org", A, ip4("198.51.100.7"))]),
        "a-cname": packet("www.example.org", A, [
            rr("www.example.org", CNAME, name("mx.example.org")),
            rr("mx.example.org", A, ip4("192.0.2.11"))]),
        "aaaa-records": packet("mx.example.org", AAAA, [
            rr("mx.example.org", AAAA, ip6("2001:db8::25")),
            rr("mx.example.org", AAAA, ip6("::")),
            rr("mx.example.org", AAAA, ip6("ff02::1"))]),
        "mx-many": packet("big.example", MX, [
            rr("big.example", MX, mx(i % 7, "mx%d.big.example" % i)) for i in range(40)]),
    },
    "fuzz_dns_ptr": {
        "ptr-one": packet(PTR_OF, PTR, [rr(PTR_OF, PTR, name("mail.example.org"))]),
        "ptr-several": packet(PTR_OF, PTR, [
            rr(PTR_OF, PTR, name("a.example.org")),
            rr(PTR_OF, PTR, name("B.example.org.")),
            rr(PTR_OF, PTR, name("bad_name.example")),
            rr(PTR_OF, PTR, name("a.example.org")),
            rr(PTR_OF, PTR, name("c.example.org")),
            rr(PTR_OF, PTR, name("d.example.org"))]),
        "ptr-cname": packet(PTR_OF, PTR, [
            rr(PTR_OF, CNAME, name("1.0/24.2.0.192.in-addr.arpa")),
            rr("1.0/24.2.0.192.in-addr.arpa", PTR, name("host.example"))]),
        "ptr-v6": packet("5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
                         PTR, [rr(b"\xc0\x0c", PTR, name("v6.example"))]),
        "ptr-truncated": packet(PTR_OF, PTR, [rr(PTR_OF, PTR, name("mail.example.org"))])[:-5],
        "ptr-servfail": packet(PTR_OF, PTR, [], rcode=2),
        "fwd-a": packet("mail.example.org", A, [rr("mail.example.org", A, ip4("192.0.2.1"))]),
        "fwd-aaaa": packet("v6.example", AAAA, [
            rr("v6.example", AAAA, ip6("2001:db8::25"))]),
    },
}

# fuzz_dns_ptr's input: family byte (bit 0: IPv6), 16 address bytes, packet
CLIENT4 = b"\x00" + ip4("192.0.2.1") + bytes(12)
CLIENT6 = b"\x01" + ip6("2001:db8::25")
for n in list(seeds["fuzz_dns_ptr"]):
    prefix = CLIENT6 if "v6" in n or "aaaa" in n else CLIENT4
    seeds["fuzz_dns_ptr"][n] = prefix + seeds["fuzz_dns_ptr"][n]

for target, files in seeds.items():
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    for n, data in files.items():
        with open(os.path.join(d, n + ".bin"), "wb") as f:
            f.write(data)
