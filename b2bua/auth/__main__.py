"""``python -m b2bua.auth USER REALM``: print a users file line (asks for the password)."""

from .users import main

raise SystemExit(main())
