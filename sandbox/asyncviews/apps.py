from django.apps import AppConfig


class AsyncViewsConfig(AppConfig):
    name = "sandbox.asyncviews"
