"""Rows that background work writes, so a notebook can see what ran, where and when."""

from django.db import models


class Order(models.Model):
    """A row that a task reads: enqueued before it is committed, a worker cannot see it."""

    item = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"order {self.pk}: {self.item}"


class Event(models.Model):
    """One line written by a task or a background coroutine when it runs: which one, in which process."""

    label = models.CharField(max_length=200)
    source = models.CharField(max_length=50)  # "kernel", "db_worker", "uvicorn", ...
    pid = models.IntegerField()
    at = models.FloatField()  # time.time() when it was written

    class Meta:
        ordering = ["at"]

    def __str__(self) -> str:
        return f"{self.label} ({self.source}, pid {self.pid})"
