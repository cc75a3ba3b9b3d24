"""Orders: status changes through the order type's state machine (with order events and the slot place a
booking holds), and the order as the APIs show it.

What other packages may call:
"""
from app.services.orders.state import (
    claim_open_slot_place,
    move,
    release_place,
    take_inventory_place,
    take_place,
    take_slot_place,
)
from app.services.orders.views import describe, describe_many

__all__ = ["claim_open_slot_place", "describe", "describe_many", "move", "release_place", "take_inventory_place",
           "take_place", "take_slot_place"]
