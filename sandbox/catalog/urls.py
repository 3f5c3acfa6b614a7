from django.urls import path

from sandbox.catalog import views

urlpatterns = [
    path("items/", views.item_list),
    path("items-sync/", views.item_list_sync),
    path("count-wrong/", views.item_count_wrong),
]
