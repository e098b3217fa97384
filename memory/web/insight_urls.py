from django.urls import path

from memory.web import insights

urlpatterns = [
    path("insights/", insights.insights_overview, name="insights-overview"),
    path("insights/associations/", insights.insights_associations, name="insights-associations"),
    path("insights/habituation/", insights.insights_habituation, name="insights-habituation"),
    path("insights/priming/", insights.insights_priming, name="insights-priming"),
]
