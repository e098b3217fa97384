from config.allocator import polars_allocator_configure

polars_allocator_configure()  # before anything imports polars

from config.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
