"""The frozen settings newsletter.toml turns into: Config and its per-section parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.headerregistry import Address
from pathlib import Path
from zoneinfo import ZoneInfo

from newsletter.config.reach import ReachSettings

# [delivery] batch_size's default: rows a worker claims in one commit (chosen by `make bench`:
# see the README's Speed section); a crash leaves at most this many per connection `unknown`.
BATCH_SIZE = 20

@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str  # an http(s) URL, or a local path already resolved against the config's folder
    section: str
    kind: str = "news"  # "news" renders item cards, "events" renders event rows
    max_items: int = 5
    keywords: tuple[str, ...] = ()
    language: str = ""  # "": the default feed; "fr": replaces the feed of the same name for fr
    section_translations: tuple[tuple[str, str], ...] = ()  # (language, section title)

    def section_in(self, language: str) -> str:
        return dict(self.section_translations).get(language, self.section)

    @property
    def is_remote(self) -> bool:
        return self.url.startswith(("http://", "https://"))


@dataclass(frozen=True)
class WebSettings:
    """[web]: the subscribe form's abuse limits and which proxies may name the client."""

    confirm_per_address_hours: int = 6  # one confirmation mail per mailbox in this many hours
    per_client_per_hour: int = 10  # subscribe requests from one client address
    global_per_hour: int = 200  # confirmation mails queued in all
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For is believed


@dataclass(frozen=True)
class Config:
    root: Path
    name: str
    sender: Address
    reply_to: str
    base_url: str
    list_id: str
    default_language: str
    timezone: ZoneInfo
    organisation: str
    postal_address: str
    reason: str
    feeds: tuple[FeedConfig, ...]
    subscriber_files: tuple[Path, ...]
    store_path: Path
    connections: int = 2
    rate_per_second: float = 0.0
    transport: str = ""  # [delivery] transport: "maildir" or "smtp"; "" = not set
    lease_seconds: int = 300  # [delivery] lease_seconds: a claim's hold, renewed while alive
    batch_size: int = BATCH_SIZE  # [delivery] batch_size: rows a claim (one commit) takes
    processes: int = 0  # [delivery] processes: sender processes; 0 = "auto" (deliver/processes)
    store_url: str = ""  # [store] url: sqlite:///FILE or another engine's; "" = [store] path
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: Path | None = None
    translations: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # lang -> key -> text
    soft_bounce_limit: int = 3
    soft_bounce_window_days: int = 30
    bounce_address: str = ""  # [bounces] address: MAIL FROM; "" is the From address
    unsubscribe_address: str = ""  # [bounces] unsubscribe_address: the mailto; "" is the above
    verp: bool = False  # [bounces] verp: MAIL FROM is address's local part + "+" + id token
    imap_move_to: str = ""  # [bounces] imap_move_to: where processed IMAP messages go
    web: WebSettings = field(default_factory=WebSettings)
    allow_hosts: frozenset[str] = frozenset()  # [network]: hosts fetched despite a private IP
    webhook_sns_topics: tuple[str, ...] = ()  # [webhooks] sns_topics: SNS TopicArns we accept
    review_required: bool = False  # [review] required: an edition needs approved_by to go
    reach: ReachSettings = field(default_factory=ReachSettings)  # [reach]: counted links
    source: Path = field(default=Path("newsletter.toml"))

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def sender_domain(self) -> str:
        return self.sender.domain

    def text_in(self, key: str, language: str) -> str:
        """organisation or reason in a language ([translations.LANG]), else as configured."""
        own = dict(dict(self.translations).get(language, ()))
        return own.get(key) or getattr(self, key)
