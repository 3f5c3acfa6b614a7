"""A counter kept where every process and every request can share it safely: a database row."""

from django.db import models


class PageCount(models.Model):
    """Visits of one page. Incremented with an `F()` expression: the database does the read-add-write."""

    name = models.CharField(max_length=100, unique=True)
    value = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"
