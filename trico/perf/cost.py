"""Money and energy per generated token from a device's price, power and the predicted throughput."""

from __future__ import annotations


def usd_per_million_tokens(price_per_hour: float | None, devices: int, tokens_per_s: float) -> float | None:
    """$ per million generated tokens when `devices` devices at `price_per_hour` each emit `tokens_per_s`."""
    if price_per_hour is None or tokens_per_s <= 0:
        return None
    return price_per_hour * devices / 3600.0 / tokens_per_s * 1e6


def joules_per_token(tdp_W: float | None, devices: int, tokens_per_s: float) -> float | None:
    """Energy per generated token, assuming every device draws its TDP (an upper bound on board power)."""
    if tdp_W is None or tokens_per_s <= 0:
        return None
    return tdp_W * devices / tokens_per_s


def tokens_per_dollar(usd_per_mtok: float | None) -> float | None:
    """Generated tokens per US$ (the reciprocal view used by the throughput-per-$ objective)."""
    if not usd_per_mtok:
        return None
    return 1e6 / usd_per_mtok
