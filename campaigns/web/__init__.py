"""The marketer's pages: server-rendered views and their URLs."""
