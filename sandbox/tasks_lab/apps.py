from django.apps import AppConfig


class TasksLabConfig(AppConfig):
    name = "sandbox.tasks_lab"
