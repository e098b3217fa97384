from django.urls import path

from campaigns import views

urlpatterns = [
    path("", views.home, name="home"),
    path("workspaces/switch/", views.workspace_switch, name="workspace-switch"),
]
