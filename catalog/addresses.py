"""Which network addresses a request the hub makes for someone else may reach: public (global) ones only.

A registry, a redirect or a token realm named by a client or by a registry's answer must not lead the hub to its
own loopback, its private network or link-local services (cloud metadata at 169.254.169.254): `NotPublic` says
so before anything is sent.
"""

from __future__ import annotations

import ipaddress
import socket


class NotPublic(OSError):
    """An address (or a host name resolving to one) that is loopback, private, link-local or otherwise not global."""


def is_public_ip(address: str) -> bool:
    """Whether address (an IPv4 or IPv6 literal, with or without brackets or a %zone) is a global unicast one."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_public_address(address: str, host: str) -> None:
    """NotPublic unless address, where host was reached, is public."""
    if not is_public_ip(address):
        raise NotPublic(f"{host} is at {address}, not a public address: refused")


def host_addresses(host: str) -> list[str]:
    """The addresses host (a name or an IP literal) stands for; [] when it does not resolve."""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def check_public_host(host: str) -> None:
    """NotPublic when host is, or resolves to, any address that is not public (an unresolved name passes: the
    connection then fails on its own)."""
    for address in host_addresses(host):
        check_public_address(address, host)


def is_public_host(host: str) -> bool:
    """Whether every address host stands for is public (False for a name that does not resolve)."""
    addresses = host_addresses(host)
    return bool(addresses) and all(is_public_ip(a) for a in addresses)
