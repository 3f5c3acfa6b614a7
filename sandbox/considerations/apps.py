from django.apps import AppConfig


class ConsiderationsConfig(AppConfig):
    name = "sandbox.considerations"
