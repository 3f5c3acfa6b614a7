from django.urls import path

from sandbox.library import views

urlpatterns = [
    path("books/", views.book_list),
    path("books/lazy/", views.book_list_lazy),
    path("books/<int:pk>/", views.book_detail),
    path("page/", views.book_page),
    path("page/lazy/", views.book_page_lazy),
    path("page-counts/", views.page_counts),
]
