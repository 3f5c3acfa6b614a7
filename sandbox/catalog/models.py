"""A small shop catalogue: enough rows and one relation for the ORM lessons."""

from __future__ import annotations

from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    name = models.CharField(max_length=100, unique=True)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    in_stock = models.BooleanField(default=True)
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="items")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
