"""Messaging: visit bills announced on a card (by the HIS, or found by the poller) become messages in the card
holders' inboxes and, for those who subscribed, pushes to WeChat or Alipay through an outbox; the channel
apps' message templates; what each mini-program user subscribed to.

What other packages may call:
"""
from app.services.messaging.announcements import Announced, receive
from app.services.messaging.poller import BILL_PUSH_MODES, poll_bills, set_bill_push_mode
from app.services.messaging.pushes import send
from app.services.messaging.templates import seed_from_channel

__all__ = ["Announced", "BILL_PUSH_MODES", "poll_bills", "receive", "seed_from_channel", "send",
           "set_bill_push_mode"]
