"""No request to a private address: the guard's rules, and real HTTP against 127.0.0.1."""

from __future__ import annotations

import ipaddress
import re

import pytest

from newsletter.compose.feeds import fetch
from newsletter.config import FeedConfig
from newsletter.errors import ConfigError, FeedError
from newsletter.ip_ranges import classify
from newsletter.netguard import NetGuard, Refused, parse_allow_hosts

RSS = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>One'
       b"</title><link>https://news.example.org/1</link></item></channel></rss>")


def feed(url: str) -> FeedConfig:
    return FeedConfig(name="news", url=url, section="News")


def resolver(answers: dict[str, list[str]]):  # noqa: ANN201 - a Resolver
    """A DNS stand-in: no test may ask a real name server (only 127.0.0.1 may be contacted)."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise OSError(f"no test answer for {host}")
        return answers[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


# --- which addresses are refused ---------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "169.254.0.1", "100.64.0.1", "100.100.100.200", "0.0.0.0", "0.1.2.3", "224.0.0.1",
    "239.255.255.250", "240.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2002:c0a8:101::", "::127.0.0.1",
    # site-local, IETF protocol assignments, documentation: missed by ipaddress's flags on 3.11
    "fec0::1", "192.0.0.8", "3fff::1", "198.51.100.7", "203.0.113.9",
])
def test_loopback_private_link_local_metadata_and_reserved_addresses_are_refused(address):
    assert classify(ipaddress.ip_address(address)) != ""


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111",
                                     "::ffff:93.184.215.14", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert classify(ipaddress.ip_address(address)) == ""


def test_the_reason_names_the_kind_of_address():
    assert classify(ipaddress.ip_address("169.254.169.254")) == "a cloud metadata address"
    assert classify(ipaddress.ip_address("::ffff:127.0.0.1")) == "a loopback address"
    assert classify(ipaddress.ip_address("100.64.1.1")) == "a shared (CGNAT) address"


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://news.example.org/feed.xml", "gopher://127.0.0.1:70/",
    "javascript:alert(1)", "http://user:pw@news.example.org/feed.xml",
    "http://news.example.org@127.0.0.1/", "http://127.0.0.1\\@news.example.org/",
    "http://localhost/", "http://feeds.localhost/", "http://metadata.google.internal/",
    "http://METADATA.google.internal./computeMetadata/v1/", "http://169.254.169.254/latest/",
    "http://[::1]/", "http://[::ffff:7f00:1]/", "http://[fe80::1]/", "http://0.0.0.0/",
    "http:///no-host", "http://news.example.org:99999/",
])
def test_urls_refused_without_asking_dns(url):
    dns = resolver({})
    with pytest.raises(Refused):
        NetGuard(resolve=dns).addresses(*NetGuard(resolve=dns).check_url(url))
    assert dns.asked == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1"])
def test_numeric_spellings_of_loopback_are_refused_after_getaddrinfo_normalises_them(host):
    guard = NetGuard(frozenset({"127.0.0.1"}))  # the dotted name is allowed; these are not it
    with pytest.raises(Refused, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        guard.addresses(*guard.check_url(f"http://{host}/feed.xml"))


def test_one_private_answer_among_public_ones_is_enough_to_refuse():
    guard = NetGuard(resolve=resolver({"feeds.example.org": ["93.184.215.14", "10.1.2.3"]}))
    with pytest.raises(Refused, match="resolves to 10.1.2.3, a private address"):
        guard.addresses("feeds.example.org", 443)


def test_allow_hosts_matches_the_exact_name_with_or_without_the_port():
    hosts, bad = parse_allow_hosts(["Feeds.Intranet.", "127.0.0.1:8080", "[::1]:8443"])
    assert bad == []
    guard = NetGuard(hosts)
    assert guard.allows("feeds.intranet", 443) and guard.allows("FEEDS.INTRANET.", 80)
    assert guard.allows("127.0.0.1", 8080) and not guard.allows("127.0.0.1", 8081)
    assert guard.allows("::1", 8443)
    assert not guard.allows("other.intranet", 443)


def test_an_allowed_unicode_name_matches_the_a_label_httpx_connects_to():
    hosts, _ = parse_allow_hosts(["Bücher.Intranet"])
    assert NetGuard(hosts).allows("xn--bcher-kva.intranet", 443)


def set_allow_hosts(project, value: str) -> None:  # noqa: ANN001
    """The project's [network] table is exactly `allow_hosts = VALUE`."""
    text = re.sub(r"(?m)^(\[network\]|allow_hosts = .*)\n", "",
                  project.config_path.read_text(encoding="utf-8"))
    project.config_path.write_text(f"{text}\n[network]\nallow_hosts = {value}\n",
                                   encoding="utf-8")


def test_allow_hosts_in_the_config_is_checked(project):
    from newsletter.config import load_config

    set_allow_hosts(project, '["ok.intranet", "a b/c", "x@y"]')
    with pytest.raises(ConfigError) as info:
        load_config(project.config_path)
    assert str(info.value) == (f"{project.config_path}: 'network.allow_hosts' has entries that "
                               "are not 'host' or 'host:port': 'a b/c', 'x@y'")


def test_allow_hosts_are_read_from_the_config(project):
    from newsletter.config import load_config

    set_allow_hosts(project, '["Feeds.Intranet", "127.0.0.1:8080"]')
    assert load_config(project.config_path).allow_hosts == {"feeds.intranet", "127.0.0.1:8080"}


# --- over real HTTP on 127.0.0.1 ---------------------------------------------------------------


def test_a_feed_on_loopback_is_not_fetched_unless_allowed(feed_server):
    url = feed_server.route("/f.xml", RSS)
    with pytest.raises(FeedError) as info:
        fetch(feed(url), timeout=0.5)
    assert str(info.value) == (f"feed news: not fetched: {url}: a loopback address; allow it "
                               "in newsletter.toml [network] allow_hosts")
    assert feed_server.requests == []
    assert fetch(feed(url), timeout=0.5, guard=NetGuard(frozenset({"127.0.0.1"}))).body == RSS


def test_a_redirect_to_loopback_is_refused_before_it_is_requested(feed_server):
    port = feed_server.httpd.server_address[1]
    internal = feed_server.route("/internal.xml", RSS)
    feed_server.route("/feed.xml", status=302, headers={"Location": internal})
    guard = NetGuard(frozenset({f"feeds.example.test:{port}"}),
                     resolve=resolver({"feeds.example.test": ["127.0.0.1"]}))
    with pytest.raises(FeedError) as info:
        fetch(feed(f"http://feeds.example.test:{port}/feed.xml"), timeout=0.5, guard=guard)
    assert str(info.value) == (f"feed news: not fetched: {internal}: a loopback address; "
                               "allow it in newsletter.toml [network] allow_hosts")
    assert len(feed_server.requests_for("/feed.xml")) == 1
    assert feed_server.requests_for("/internal.xml") == []


def test_a_redirect_to_a_metadata_address_is_refused(feed_server):
    feed_server.route("/feed.xml", status=301,
                      headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    # Should the guard ever let it through, the stand-in DNS sends the connection to the
    # feed server, never to 169.254.169.254: only 127.0.0.1 may be contacted.
    dns = resolver({"127.0.0.1": ["127.0.0.1"], "169.254.169.254": ["127.0.0.1"]})
    guard = NetGuard(frozenset({"127.0.0.1"}), resolve=dns)
    with pytest.raises(FeedError, match="a cloud metadata address"):
        fetch(feed(feed_server.url("/feed.xml")), timeout=0.5, guard=guard)
    assert dns.asked == ["127.0.0.1"]
    assert [r.path for r in feed_server.requests] == ["/feed.xml"]


def test_the_connection_goes_to_the_address_that_was_checked(feed_server):
    """The name is resolved once, by the guard, and the socket opened to that answer: the
    system resolver (which knows no feeds.example.test) is never asked."""
    port = feed_server.httpd.server_address[1]
    feed_server.route("/f.xml", RSS)
    dns = resolver({"feeds.example.test": ["127.0.0.1"]})
    guard = NetGuard(frozenset({"feeds.example.test"}), resolve=dns)
    assert fetch(feed(f"http://feeds.example.test:{port}/f.xml"), timeout=0.5,
                 guard=guard).body == RSS
    (request,) = feed_server.requests
    assert request.headers["host"] == f"feeds.example.test:{port}"
    assert dns.asked == ["feeds.example.test"]


def test_a_name_that_resolves_to_loopback_is_refused_at_connect_time(feed_server):
    """DNS rebinding: an earlier check passed on a public answer; the answer the connection
    would use is loopback, and that is the one checked."""
    port = feed_server.httpd.server_address[1]
    feed_server.route("/f.xml", RSS)
    answers = {"feeds.example.test": ["93.184.215.14"]}
    guard = NetGuard(resolve=resolver(answers))
    assert guard.addresses("feeds.example.test", port) == ["93.184.215.14"]  # no connection
    answers["feeds.example.test"] = ["127.0.0.1"]
    with pytest.raises(FeedError, match=r"feeds.example.test resolves to 127\.0\.0\.1, a "
                                        "loopback address"):
        fetch(feed(f"http://feeds.example.test:{port}/f.xml"), timeout=0.5, guard=guard)
    assert feed_server.requests == []


def test_a_numeric_spelling_of_the_allowed_address_is_not_allowed(feed_server):
    port = feed_server.httpd.server_address[1]
    feed_server.route("/f.xml", RSS)
    with pytest.raises(FeedError, match="resolves to 127.0.0.1, a loopback address"):
        fetch(feed(f"http://2130706433:{port}/f.xml"), timeout=0.5,
              guard=NetGuard(frozenset({"127.0.0.1"})))
    assert feed_server.requests == []


# --- `check`: images and links readers cannot reach --------------------------------------------

UNREACHABLE_BODY = """\
Welcome to the test issue.

![The fee chart](http://192.168.1.20/chart.png)

Read [the wiki](https://wiki.corp.internal/fees) and [the printer page](http://printer.local/).

![Our logo](http://localhost:8080/logo.png) [the intranet](http://intranet/start)

[Shared files](https://files.acme-corp.example.com/doc) and [the guide](https://files.acme.net/g).

[Fine](https://ipbusiness.example.org/guide) ![A public chart](https://ipbusiness.example.org/c.png)
"""


def check_draft(project, body: str, answers: dict[str, list[str]]) -> list[str]:
    from newsletter.compose.check import check_issue
    from newsletter.compose.render import render_edition
    from newsletter.compose.snapshot import read_snapshot

    project.copy_sample_issue()
    path = project.draft(body=body)
    draft = project.load_draft()
    items = read_snapshot(project.issues / "2026-11.items.yaml").items
    edition = render_edition(project.config(), draft, items)
    problems = check_issue(draft, edition, item_count=len(items), resolve=resolver(answers))
    return [str(p).replace(str(path), "DRAFT") for p in problems]


def test_check_reports_images_and_links_on_hosts_readers_cannot_reach_at_their_lines(project):
    problems = check_draft(project, UNREACHABLE_BODY, {"files.acme.net": ["10.20.0.7"]})
    text = (project.issues / "2026-11.md").read_text(encoding="utf-8")
    assert text.splitlines()[9].startswith("![The fee chart]")  # line 10: the front matter is 7
    assert problems == [
        "DRAFT:10: error: image 'http://192.168.1.20/chart.png' is on 192.168.1.20, a private "
        "address: subscribers cannot reach it",
        "DRAFT:14: error: image 'http://localhost:8080/logo.png' is on localhost, a name only "
        "the local network knows: subscribers cannot reach it",
        "DRAFT:12: warning: link 'https://wiki.corp.internal/fees' is on wiki.corp.internal, a "
        "name only the local network knows: subscribers cannot reach it",
        "DRAFT:12: warning: link 'http://printer.local/' is on printer.local, a name only the "
        "local network knows: subscribers cannot reach it",
        "DRAFT:14: warning: link 'http://intranet/start' is on intranet, a single-label name, "
        "which the public DNS does not answer: subscribers cannot reach it",
        "DRAFT:16: warning: link 'https://files.acme.net/g' is on files.acme.net, it resolves "
        "only to a private address: subscribers cannot reach it",
    ]


def test_a_host_with_one_public_answer_is_not_reported(project):
    body = "Hello.\n\n[The guide](https://files.acme.net/g)\n"
    assert check_draft(project, body, {"files.acme.net": ["10.20.0.7", "93.184.215.14"]}) == []


def test_a_feed_items_private_image_is_an_error_at_its_snapshot_line(project):
    project.copy_sample_issue()
    snapshot = project.issues / "2026-11.items.yaml"
    text = snapshot.read_text(encoding="utf-8").replace(
        "Sessions run every second Thursday;",
        '<img src="http://10.0.0.5/clinic.png" alt="Clinic"> Sessions run every second Thursday;')
    snapshot.write_text(text, encoding="utf-8")
    result = project.cli("check", "2026-11")
    line = text[:text.index("http://10.0.0.5/clinic.png")].count("\n") + 1
    assert result.code == 1
    assert f"{snapshot}:{line}: error: image 'http://10.0.0.5/clinic.png' is on 10.0.0.5, a " \
        "private address: subscribers cannot reach it" in result.out.splitlines()
