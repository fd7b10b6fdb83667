"""``manage.py loadtest``: an operator's benchmark of Anteroom against a bare relay."""
