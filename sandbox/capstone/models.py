"""The auction's data: lots that take bids, and the bids that raised a lot's price."""

from django.db import models


class Lot(models.Model):
    """Something for sale. `current_price` is the highest accepted bid so far (the starting price at first)."""

    title = models.CharField(max_length=100)
    current_price = models.PositiveIntegerField()  # whole euros: no Decimal to carry through JSON
    closed = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"lot {self.pk}: {self.title} at {self.current_price} EUR{' (closed)' if self.closed else ''}"


class Bid(models.Model):
    """An accepted bid: the one that raised its lot's price to `amount`."""

    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="bids")
    bidder = models.CharField(max_length=50)
    amount = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.bidder} bid {self.amount} EUR on lot {self.lot_id}"
