"""Pages of what Primer learns: views and their urls."""
