from django.apps import AppConfig


class ConcurrencyConfig(AppConfig):
    name = "sandbox.concurrency"
