"""The plugins bundled with b2bua, installed as the package ``b2bua_plugins``.

A ``[[plugin]]`` table whose ``module`` is a bare name (``module = "static_routes"``)
loads ``b2bua_plugins.<name>`` first.  See README.md in this directory.
"""
