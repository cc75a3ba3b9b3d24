"""What both channels' wire formats share: Asia/Shanghai times, HTTP failures, answers, downloads."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from .base import ChannelError, ChannelUnavailable, InvalidResponse

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # China has no DST


def shanghai_to_utc(text: str, fmt: str) -> datetime:
    return datetime.strptime(text, fmt).replace(tzinfo=SHANGHAI).astimezone(UTC)


def http_error(status: int | None, what: str) -> ChannelError:
    """A 5xx (or no answer at all) is worth retrying; a 4xx is a fault on our side."""
    if status is None or status >= 500:
        return ChannelUnavailable(f"{what} answered HTTP {status}")
    return ChannelError(f"{what} answered HTTP {status}")


@contextmanager
def reading_answer(operation: str) -> Iterator[None]:
    """A field of a verified answer that does not parse makes the whole answer unreadable."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidResponse(f"{operation} answered an unreadable field: {exc!r}") from exc


def stream_to_file(chunks: Iterable[bytes], dest: Path) -> Path:
    """Write through `<dest>.part` and rename, so `dest` is either the whole download or absent."""
    partial = dest.with_name(dest.name + ".part")
    try:
        with open(partial, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, dest)
    return dest
