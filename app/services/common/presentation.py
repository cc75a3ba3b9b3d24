"""The shapes of an item, a slot, a patient and a card that both APIs show (API.md), with phone and ID
numbers masked: one definition each, so the mini-program and the front desk never drift apart."""
from __future__ import annotations

from app.db.models import Card, Item, Patient, Slot
from app.services.common.staff_scope import SHANGHAI
from config.logging import mask_id_number, mask_phone


def item_ref(item: Item) -> dict:
    """An item as an order names it."""
    return {"id": item.id, "code": item.code, "name": item.name, "price_fen": item.price_fen}


def catalog_item(item: Item, channels: list[str]) -> dict:
    """An item in the catalog: `channels` it can be bought through now."""
    return {**item_ref(item), "kind": item.kind, "description": item.description, "channels": channels}


def slot_ref(slot: Slot) -> dict:
    return {"id": slot.id, "starts_at": slot.starts_at, "ends_at": slot.ends_at}


def catalog_slot(slot: Slot) -> dict:
    """A slot on offer, its times in Asia/Shanghai, with the places left."""
    return {"id": slot.id, "starts_at": slot.starts_at.astimezone(SHANGHAI),
            "ends_at": slot.ends_at.astimezone(SHANGHAI), "remaining": slot.capacity - slot.reserved}


def patient_ref(patient: Patient) -> dict:
    return {"id": patient.id, "name": patient.name, "phone": mask_phone(patient.phone)}


def card_view(card: Card) -> dict:
    return {"card_no": card.card_no, "patient_id": card.patient_id, "verified": card.verified_at is not None}


def patient_view(patient: Patient, cards: list[Card]) -> dict:
    """A patient as their mini-program user sees them, with their cards."""
    return {**patient_ref(patient), "id_number": mask_id_number(patient.id_number), "relation": patient.relation,
            "cards": [card_view(card) for card in cards]}


def desk_patient_view(patient: Patient, card_nos: list[str]) -> dict:
    """A patient as the front desk sees them: the card numbers, no ID number."""
    return {**patient_ref(patient), "relation": patient.relation, "card_nos": card_nos}
