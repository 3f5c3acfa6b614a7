"""A small library for the async ORM lessons (chapter 04): one relation of every kind.

- `Book.author`: a foreign key (reverse manager `author.books`, not nullable: no `aremove`/`aclear` there);
- `Book.series`: a nullable foreign key (reverse manager `series.books` has `aremove`/`aclear`);
- `Book.tags`: a many-to-many relation (`book.tags`, and `tag.books` the other way);
- `Book.blurb`: a large text column, the one worth deferring with `only()`/`defer()`.
"""

from __future__ import annotations

from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100, unique=True)
    born = models.PositiveIntegerField()
    active = models.BooleanField(default=True)  # still writing: the source document's `filter(active=True)`

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Series(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200, unique=True)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    series = models.ForeignKey(Series, on_delete=models.SET_NULL, null=True, blank=True, related_name="books")
    tags = models.ManyToManyField(Tag, blank=True, related_name="books")
    published = models.DateField()
    pages = models.PositiveIntegerField(default=0)
    blurb = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title
