"""Money is an integer number of fen; yuan strings exist only at the Alipay and export edges."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100


def fen_to_yuan(fen: int) -> str:
    """12345 -> '123.45'."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError("amounts are integer fen")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def yuan_to_fen(yuan: str | Decimal) -> int:
    """'123.45' -> 12345, exactly; more than two decimals is an error, never a rounding."""
    try:
        value = Decimal(str(yuan).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount of yuan: {yuan!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount of yuan: {yuan!r}")
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"more than two decimals in {yuan!r}")
    return int(fen)


def divide_half_up(fen: int, divisor: Decimal | str) -> int:
    """fen / divisor rounded half-up to the fen (invoice amounts: 10000 / 1.06 -> 9434)."""
    return int((Decimal(fen) / Decimal(divisor)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
