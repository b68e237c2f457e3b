"""Decodes a pcap with scapy, independently of the tap tool that wrote it.

Prints one JSON document:
- "http": every HTTP message scapy's HTTP dissector finds after its own TCP
  reassembly, in capture order: [method, path, ""] for a request,
  ["", "", status] for a response, and its body as hex;
- "problems": frames whose IPv4 or TCP checksum is wrong, or whose sequence
  number does not continue its direction of the stream;
- "streams": each TCP connection in order of its SYN, with the bytes each
  side sent (hex), put together by sequence number.

Usage: python pcap_decode.py capture.pcap
"""

import json
import sys

from scapy.all import IP, TCP, rdpcap, sniff
from scapy.layers.http import HTTPRequest, HTTPResponse
from scapy.sessions import TCPSession


def checksums_ok(packet):
    ip = packet[IP]
    again = ip.copy()
    del again.chksum
    del again[TCP].chksum
    again = IP(bytes(again))
    return again.chksum == ip.chksum and again[TCP].chksum == ip[TCP].chksum


def text(value):
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def http_messages(path):
    out = []
    for packet in sniff(offline=path, session=TCPSession, quiet=True):
        if packet.haslayer(HTTPRequest):
            request = packet[HTTPRequest]
            body = bytes(request.payload)
            out.append([text(request.Method), text(request.Path), "", body.hex()])
        elif packet.haslayer(HTTPResponse):
            response = packet[HTTPResponse]
            body = bytes(response.payload)
            out.append(["", "", text(response.Status_Code), body.hex()])
    return out


def streams_and_problems(path):
    streams, order, problems, next_seq = {}, [], [], {}
    for number, packet in enumerate(rdpcap(path), start=1):
        if not packet.haslayer(TCP):
            problems.append(f"frame {number}: not TCP over IPv4")
            continue
        if not checksums_ok(packet):
            problems.append(f"frame {number}: checksum")
        ip, tcp = packet[IP], packet[TCP]
        src, dst = (ip.src, tcp.sport), (ip.dst, tcp.dport)
        flags = int(tcp.flags)
        syn, fin = flags & 0x02, flags & 0x01
        if syn and not flags & 0x10:
            key = (src, dst)
            streams[key] = {"client": bytearray(), "server": bytearray()}
            order.append(key)
        key = (src, dst) if (src, dst) in streams else (dst, src)
        if key not in streams:
            problems.append(f"frame {number}: no SYN for this connection")
            continue
        side = "client" if key == (src, dst) else "server"
        payload = bytes(tcp.payload)
        expected = next_seq.get((key, side))
        if expected is not None and tcp.seq != expected and (payload or fin):
            problems.append(f"frame {number}: seq {tcp.seq}, expected {expected}")
        streams[key][side] += payload
        if syn or fin or payload or expected is None:
            next_seq[(key, side)] = (tcp.seq + len(payload) + (1 if syn or fin else 0)) % 2**32
    listed = [
        {"client": streams[k]["client"].hex(), "server": streams[k]["server"].hex()}
        for k in order
    ]
    return listed, problems


def main():
    path = sys.argv[1]
    streams, problems = streams_and_problems(path)
    json.dump({"http": http_messages(path), "problems": problems, "streams": streams}, sys.stdout)


if __name__ == "__main__":
    main()
