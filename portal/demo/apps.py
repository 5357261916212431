from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`manage.py seed_demo`: the demo `make run` seeds. It sits above every domain app
    (it creates customers, nodes, labs and workspaces through their actions)."""

    name = "portal.demo"
    verbose_name = "Demo"
