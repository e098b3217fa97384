"""Who may see and do what: workspaces, memberships, API keys, scoping, authentication."""
