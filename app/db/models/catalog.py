from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.types import JsonDoc, UTCDateTime, utcnow


class Item(Base):
    """A bookable clinic item or package.

    `collected_by`: who takes the patient's money. `clinic`: the clinic's own channel apps. `platform`: the
    platform operator's apps (the channel-product model): the clinic redeems, and the operator pays the clinic
    `purchase_price_fen[channel]` per redeemed order. `channels` are the channels it is offered on; the
    per-channel inventory rows are its stock there."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("clinic_id", "code"),
        CheckConstraint("price_fen > 0", name="price_positive"),
        CheckConstraint("kind IN ('item', 'package')", name="kind_known"),
        CheckConstraint("collected_by IN ('clinic', 'platform')", name="collector_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="item", server_default="item")
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price_fen: Mapped[int] = mapped_column(Integer)
    collected_by: Mapped[str] = mapped_column(String(16), default="clinic", server_default="clinic")
    channels: Mapped[list] = mapped_column(JsonDoc, default=lambda: ["wechat", "alipay"])
    # {channel: fen}: what the platform pays the clinic per redeemed order (platform-collected items).
    purchase_price_fen: Mapped[dict | None] = mapped_column(JsonDoc)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Redeeming it needs an attachment on the order (e.g. a panoramic X-ray) or a stated reason why there is none.
    requires_attachment: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=utcnow)


class Slot(Base):
    """A time slot of an item; `reserved` counts places held by unpaid orders and sold.

    Patients see a slot from `release_at` (NULL: at once) while it is not `closed`; closing one keeps the
    bookings it has."""

    __tablename__ = "slots"
    __table_args__ = (
        CheckConstraint("reserved >= 0 AND reserved <= capacity", name="reserved_within_capacity"),
        UniqueConstraint("item_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    release_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ItemInventory(Base):
    """How many of an item a channel may sell; `reserved` counts held and sold."""

    __tablename__ = "item_inventory"
    __table_args__ = (
        UniqueConstraint("item_id", "channel"),
        CheckConstraint("reserved >= 0 AND reserved <= quantity", name="reserved_within_quantity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    channel: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
