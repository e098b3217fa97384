from django.urls import path

from memory.web import imports

urlpatterns = [
    path("imports/", imports.imports, name="imports"),
    path("imports/<int:import_id>/", imports.import_detail, name="import-detail"),
    path("imports/<int:import_id>/status/", imports.import_status_json, name="import-status"),
    path("imports/<int:import_id>/run-again/", imports.import_run_again, name="import-run-again"),
]
