"""Geometry helpers (sample module written for verticals-testgen)."""

from __future__ import annotations

import math


class Rectangle:
    """An axis-aligned rectangle."""

    def __init__(self, width: float, height: float):
        if width < 0 or height < 0:
            raise ValueError("width and height must be non-negative")
        self.width = width
        self.height = height

    def area(self) -> float:
        return self.width * self.height

    def perimeter(self) -> float:
        return 2 * (self.width + self.height)

    def is_square(self) -> bool:
        return self.width == self.height

    def scale(self, factor: float) -> Rectangle:
        if factor <= 0:
            raise ValueError("factor must be positive")
        return Rectangle(self.width * factor, self.height * factor)


def circle_area(radius: float) -> float:
    """Area of a circle of the given radius."""
    if radius < 0:
        raise ValueError("radius must be non-negative")
    return math.pi * radius * radius


def triangle_kind(a: float, b: float, c: float) -> str:
    """Classify a triangle by its side lengths."""
    sides = sorted((a, b, c))
    if sides[0] <= 0:
        return "invalid"
    if sides[0] + sides[1] <= sides[2]:
        return "impossible"
    if a == b == c:
        return "equilateral"
    if a == b or b == c or a == c:  # noqa: SIM109 - written plainly on purpose (branches to cover)
        return "isosceles"
    if math.isclose(sides[0] ** 2 + sides[1] ** 2, sides[2] ** 2):
        return "right"
    return "scalene"


def clamp(value: float, low: float, high: float) -> float:
    """Limit value to the closed interval [low, high]."""
    if low > high:
        raise ValueError("low must not exceed high")
    if value < low:
        return low
    if value > high:
        return high
    return value
