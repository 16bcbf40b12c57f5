"""Keep secrets out of log lines, whoever writes them.

The settings never print a secret (they are `SecretStr`), but the libraries below them can:
aiokafka logs every request at debug level, and a SASL PLAIN authentication request carries
the password in its bytes. `redact_secrets` installs a log record factory, for the whole
process, that blanks those bytes and any secret value in a record's message and traceback.

A secret is blanked where it stands as a whole token (not inside a longer run of letters,
digits, `-` or `_`), and only if it has at least `MIN_REDACTED` characters: a shorter one
would match ordinary words and mangle every line, and is too short to be a secret worth the
name (the console token must have 16).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import SecretStr

MASK = "**********"
MIN_REDACTED = 8
_TOKEN_CHAR = r"[A-Za-z0-9_\-]"
_SASL_BYTES = re.compile(r"sasl_auth_bytes=.*", re.S)


class _RedactingFactory:
    def __init__(self, wrapped: Callable[..., logging.LogRecord]) -> None:
        self.wrapped = wrapped
        self.secrets: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # the handler reports a bad format string, as it would anyway
            return record
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return record

    def redact(self, text: str) -> str:
        if "SaslAuthenticateRequest" in text:  # the payload may hold a password, or part of one
            text = _SASL_BYTES.sub(f"sasl_auth_bytes={MASK})", text)
        if self.pattern is not None:
            text = self.pattern.sub(MASK, text)
        return text

    def add(self, secret: str) -> None:
        self.secrets.add(secret)
        alternatives = "|".join(re.escape(s) for s in sorted(self.secrets, key=len, reverse=True))
        # Not after a token character, unless that ends an escape such as \x00 in a bytes repr.
        before = rf"(?:(?<!{_TOKEN_CHAR})|(?<=\\x[0-9a-f]{{2}}))"
        self.pattern = re.compile(f"{before}(?:{alternatives})(?!{_TOKEN_CHAR})")


def redact_secrets(secrets: Iterable[SecretStr]) -> None:
    """From now on, no log record of this process shows these values."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        factory = _RedactingFactory(factory)
        logging.setLogRecordFactory(factory)
    for secret in secrets:
        value = secret.get_secret_value()
        if len(value) >= MIN_REDACTED:
            # As is, and as it shows inside a bytes repr.
            factory.add(value)
            factory.add(repr(value.encode())[2:-1])
