"""The HIS API under /api/his/v1: the hospital's own system calling us, signed with HMAC."""
