"""rollout_urls of the fleet API (see api/urls.py): updates and their rollouts."""

from django.urls import URLPattern, re_path

from portal.fleet.api import rollouts as views

ID = r"(?P<{}>[0-9]{{1,18}})"
UPDATE, ROLLOUT = ID.format("update_id"), ID.format("rollout_id")

urlpatterns: list[URLPattern] = [
    re_path(r"^updates/?$", views.UpdateListView.as_view(), name="fleet-updates"),
    re_path(rf"^updates/{UPDATE}/?$", views.UpdateDetailView.as_view(), name="fleet-update"),
    re_path(
        rf"^updates/{UPDATE}/rollouts/?$",
        views.UpdateRolloutsView.as_view(),
        name="fleet-update-rollouts",
    ),
    re_path(r"^rollouts/?$", views.RolloutListView.as_view(), name="fleet-rollouts"),
    re_path(rf"^rollouts/{ROLLOUT}/?$", views.RolloutDetailView.as_view(), name="fleet-rollout"),
    *(
        re_path(
            rf"^rollouts/{ROLLOUT}/{move}/?$",
            views.RolloutMoveView.as_view(move=move),
            name=f"fleet-rollout-{move}",
        )
        for move in views.MOVES
    ),
]
