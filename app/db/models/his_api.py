from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import UTCDateTime


class HisApiNonce(Base):
    """A nonce the HIS API accepted, kept while a request carrying it could still pass the timestamp
    window, so that the same signed request sent again is refused (app.api.his.security)."""

    __tablename__ = "his_api_nonces"
    __table_args__ = (UniqueConstraint("key_id", "nonce"), Index("ix_his_api_nonces_signed_at", "signed_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(100))
    nonce: Mapped[str] = mapped_column(String(64))
    # The request's own timestamp: once it is older than the window, the nonce can be forgotten.
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
