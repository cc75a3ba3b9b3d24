"""Booking: a patient's orders of every type (placed, listed, cancelled), the front desk (confirm, no-show,
reschedule, cancel), redemption with extra charges, no-shows, the HIS registration kept in step, and the
patients staff look up. Owns the HIS writes a booking makes (booking.his_kinds).

What the web layer may call before the web framework: remembers_sold_out, remembered_sold_out.
"""
from app.services.booking import his_kinds  # noqa: F401  (registers registration, registration_revert, charge, extra_charge)
from app.services.booking.placing import remembered_sold_out, remembers_sold_out

__all__ = ["remembered_sold_out", "remembers_sold_out"]
