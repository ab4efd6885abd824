"""A tiny inventory with reservations (sample module written for verticals-testgen)."""

from __future__ import annotations


class OutOfStock(Exception):
    """Raised when a reservation asks for more than is available."""


class Inventory:
    def __init__(self) -> None:
        self._stock: dict[str, int] = {}
        self._reserved: dict[str, int] = {}

    def add(self, sku: str, quantity: int) -> int:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self._stock[sku] = self._stock.get(sku, 0) + quantity
        return self._stock[sku]

    def available(self, sku: str) -> int:
        return self._stock.get(sku, 0) - self._reserved.get(sku, 0)

    def reserve(self, sku: str, quantity: int) -> int:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        if self.available(sku) < quantity:
            raise OutOfStock(sku)
        self._reserved[sku] = self._reserved.get(sku, 0) + quantity
        return self.available(sku)

    def release(self, sku: str, quantity: int) -> int:
        held = self._reserved.get(sku, 0)
        if quantity > held:
            quantity = held
        self._reserved[sku] = held - quantity
        return self.available(sku)


def parse_order_line(line: str) -> tuple[str, int]:
    """Parse 'SKU x QTY' (e.g. 'AB-1 x 3') into (sku, qty)."""
    if " x " not in line:
        raise ValueError("expected 'SKU x QTY'")
    sku, _, qty = line.partition(" x ")
    sku = sku.strip().upper()
    if not sku:
        raise ValueError("empty SKU")
    try:
        quantity = int(qty)
    except ValueError:
        raise ValueError("quantity is not a number") from None
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    return sku, quantity


def order_total(lines: list[str], prices: dict[str, float], discount: float = 0.0) -> float:
    """Total price of order lines, with a fractional discount (0 <= discount < 1)."""
    if not 0 <= discount < 1:
        raise ValueError("discount must be in [0, 1)")
    total = 0.0
    for line in lines:
        sku, quantity = parse_order_line(line)
        if sku not in prices:
            raise KeyError(sku)
        total += prices[sku] * quantity
    return round(total * (1 - discount), 2)
