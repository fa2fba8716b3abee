"""Passwords out of database URLs: what messages, labels and notebooks may show.

Shared by every step that shows or passes on a PostgreSQL URL or libpq keyword DSN (the config
checks, the PostgreSQL reader, the jobs that hand a notebook its data), so none of them has to
import the source layer to hide a password.
"""

from __future__ import annotations

import re

# A password in a query string (?password=..., &sslpassword=...) or a libpq keyword DSN
# (host=x password=... or password='a b'); quoted values may hold escaped quotes.
_SECRET_KEYWORDS = r"(?:ssl)?password"
_QUERY_SECRET = re.compile(rf"([?&]{_SECRET_KEYWORDS}=)[^&#]*", re.IGNORECASE)
_KEYWORD_SECRET = re.compile(
    rf"(^|\s)({_SECRET_KEYWORDS}\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)", re.IGNORECASE
)
_SECRET_PARAMETER = re.compile(rf"{_SECRET_KEYWORDS}=", re.IGNORECASE)
REDACTED = "***"


def redact(url: str) -> str:
    """``url`` (or a libpq keyword DSN) with every password replaced by ``***``.

    Covers ``postgresql://user:PW@host/db``, ``?password=PW`` / ``&password=PW``,
    ``sslpassword``, and keyword DSNs such as ``host=x password=PW``.
    """
    return _passwords_replaced(str(url), REDACTED)


def without_password(url: str) -> str:
    """``url`` (or a keyword DSN) with its passwords removed, so libpq falls back to
    ``PGPASSWORD`` (a redacted URL would send ``***`` as the password)."""
    return _passwords_replaced(str(url), None)


def _passwords_replaced(text: str, replacement: str | None) -> str:
    """``text`` with each password set to ``replacement``, or dropped with its key (None)."""
    if "://" not in text:
        if replacement is None:
            return " ".join(_KEYWORD_SECRET.sub(" ", text).split())
        return _KEYWORD_SECRET.sub(lambda m: m.group(1) + m.group(2) + replacement, text)
    scheme, rest = text.split("://", 1)
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            userinfo = user if replacement is None else f"{user}:{replacement}"
        authority = f"{userinfo}@{host}"
    if replacement is not None:
        return _QUERY_SECRET.sub(
            lambda m: m.group(1) + replacement, f"{scheme}://{authority}{tail}"
        )
    path, _, query = tail.partition("?")
    query, hash_mark, fragment = query.partition("#")
    kept = [p for p in query.split("&") if p and not _SECRET_PARAMETER.match(p)]
    query = f"?{'&'.join(kept)}" if kept else ""
    return f"{scheme}://{authority}{path}{query}{hash_mark}{fragment}"
