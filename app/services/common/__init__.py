"""What every capability package shares: who is calling (principals), the audit trail, the one way a money
record's status changes (status), Idempotency-Key replays, the shapes both APIs show (presentation), and
finding rows within a staff user's clinics. Imports no other service package.
"""
