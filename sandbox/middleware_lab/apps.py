from django.apps import AppConfig


class MiddlewareLabConfig(AppConfig):
    name = "sandbox.middleware_lab"
