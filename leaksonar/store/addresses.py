"""Addresses in the index. `ip` columns hold an IPv4 or IPv6 address as Python writes it (IPv6
compressed, at most 39 characters); `ip_key` holds its order key (`address_key`): every order by address
and every address range is one on the key."""

from __future__ import annotations

import ipaddress
import re
import socket

from leaksonar.targets import ntoa, parse_address

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

KEY_LENGTH = 33
"""Characters of the longest key (an IPv6 address's)."""


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
"""An IPv4 address as Python writes it (four decimal octets without leading zeros)."""


def parse_network(text: str) -> Network:
    """An IPv4 or IPv6 network (CIDR; host bits allowed and cleared), an IPv4-mapped one as its IPv4
    network (`::ffff:10.0.0.0/104` is 10.0.0.0/8); ValueError for anything else."""
    if "%" in text:
        raise ValueError(f"{text!r} has a zone")
    found = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(found, ipaddress.IPv6Network) and found.subnet_of(_MAPPED):
        return ipaddress.IPv4Network((found.network_address.ipv4_mapped, found.prefixlen - 96))
    return found


def address_key(address: str | Address) -> str:
    """The order key of an address: its version then its value in fixed-width hex ("4" and 8 digits,
    "6" and 32), so that comparing keys as strings (byte order, the "C" collation) orders every IPv4
    address before every IPv6 one and each family by value, as `ipaddress.get_mixed_type_key` does."""
    if isinstance(address, str) and _IPV4.fullmatch(address):  # the usual spelling, read at C speed
        return "4" + socket.inet_aton(address).hex()
    found = parse_address(address) if isinstance(address, str) else address
    return f"{found.version}{int(found):0{found.max_prefixlen // 4}x}"


def network_keys(network: Network) -> tuple[str, str]:
    """The keys of a network's first and last address: the network is the key range between them."""
    return address_key(network.network_address), address_key(network.broadcast_address)


def interval_keys(first: int, last: int) -> tuple[str, str]:
    """The keys of an interval of target keys (a scan's coverage, `leaksonar.targets`: an IPv4 address as its
    integer, an IPv6 one after every IPv4 one), which order as these keys do."""
    return address_key(ntoa(first)), address_key(ntoa(last))
