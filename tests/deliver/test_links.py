"""A reader's links from one token are the links the two makers give one by one."""

from __future__ import annotations

from conftest_delivery import make_delivery_project

from newsletter.audience.return_address import ReturnPaths
from newsletter.config import load_config
from newsletter.deliver.links import reader_links
from newsletter.deliver.send import unsubscribe_url_maker


def test_reader_links_equal_the_unsubscribe_url_and_the_mailto_made_apart(tmp_path) -> None:
    config = load_config(make_delivery_project(tmp_path / "nl", 1).config)
    links = reader_links(config, "s3cret")
    url_of, paths = unsubscribe_url_maker(config, "s3cret"), ReturnPaths(config, "s3cret")
    for email in ("ann@example.org", "O'Brien+tag@example.co.uk", "x" * 60 + "@example.com",
                  "zoë@exämple.org", "a.b-c_d~e@example.org"):
        assert links(email) == (url_of(email), paths.mailto(email)), email
