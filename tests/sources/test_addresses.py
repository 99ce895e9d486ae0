"""Which hosts a download may reach: every spelling of a local address is refused, public
addresses and the configured providers' own origins are not."""

from __future__ import annotations

import socket

import pytest

from songmix.sources.addresses import AddressPolicy, address_kind

LOCAL_URLS = [
    "http://127.0.0.1:8080/a.mp3",
    "http://127.1/a.mp3",  # short form
    "http://2130706433/a.mp3",  # decimal
    "http://0x7f000001/a.mp3",  # hex
    "http://0x7f.1/a.mp3",
    "http://0177.0.0.1/a.mp3",  # octal
    "http://localhost:8080/a.mp3",
    "http://LOCALHOST./a.mp3",
    "http://api.localhost/a.mp3",
    "http://[::1]:8080/a.mp3",
    "http://[::ffff:127.0.0.1]/a.mp3",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/a.mp3",
    "http://[0:0:0:0:0:ffff:10.0.0.1]/a.mp3",
    "http://[2002:7f00:1::]/a.mp3",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/a.mp3",  # NAT64 of 169.254.169.254
    "http://0.0.0.0:8080/a.mp3",
    "http://[::]/a.mp3",
    "http://10.1.2.3/a.mp3",
    "http://172.16.0.1/a.mp3",
    "http://192.168.1.1/a.mp3",
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://100.64.0.1/a.mp3",  # carrier-grade NAT
    "http://[fe80::1]/a.mp3",
    "http://[fc00::1]/a.mp3",
    "http://[fec0::1]/a.mp3",
    "http://224.0.0.1/a.mp3",
    "http://[ff02::1]/a.mp3",
    "http://240.0.0.1/a.mp3",
    "http://255.255.255.255/a.mp3",
    "http://user:pw@127.0.0.1/a.mp3",
    "https://public.example@127.0.0.1/a.mp3",
]


@pytest.mark.parametrize("url", LOCAL_URLS)
def test_every_spelling_of_a_local_address_is_refused(url):
    assert AddressPolicy().refusal(url) is not None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.mp3", "data:audio/mpeg;base64,SUQz",
                                 "gopher://example.com/", "javascript:alert(1)", "//example.com/a.mp3",
                                 "http:///a.mp3", "http://example.com:99999/a.mp3"])
def test_other_schemes_and_malformed_urls_are_refused(url):
    assert AddressPolicy().refusal(url) is not None


@pytest.mark.parametrize("url", ["http://8.8.8.8/a.mp3", "https://[2606:4700:4700::1111]/a.mp3",
                                 "http://93.184.216.34:8080/a.mp3"])
def test_public_addresses_are_allowed(url):
    assert AddressPolicy().refusal(url) is None


def test_a_name_that_resolves_to_a_local_address_is_refused(monkeypatch):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "cdn.example":
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700::1", 80, 0, 0)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    refusal = AddressPolicy().refusal("http://cdn.example/a.mp3")
    assert refusal is not None and "127.0.0.1" in refusal and "loopback" in refusal


def test_only_the_configured_providers_own_origins_are_trusted():
    policy = AddressPolicy(["http://127.0.0.1:8080/v1", "https://api.deezer.com"])
    assert policy.refusal("http://127.0.0.1:8080/previews/x.mp3") is None
    assert policy.refusal("http://127.0.0.1:8081/previews/x.mp3") is not None  # another local port
    assert policy.refusal("http://localhost:8080/x.mp3") is not None  # another spelling is another origin
    assert policy.refusal("file://127.0.0.1:8080/x") is not None
    assert policy.peer_refusal("127.0.0.1", 8080, "127.0.0.1") is None
    assert policy.peer_refusal("cdn.example", 80, "10.0.0.7") is not None
    assert policy.peer_refusal("cdn.example", 80, "93.184.216.34") is None


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:10.0.0.1", "private"), ("fe80::1%eth0", "link-local"),
    ("239.1.2.3", "multicast"), ("0.0.0.0", "unspecified"), ("100.64.0.1", "non-public"), ("8.8.8.8", None),
    ("not an address", "unparseable"),
])
def test_address_kind(address, kind):
    assert address_kind(address) == kind
