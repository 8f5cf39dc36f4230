"""The marketer's cockpit: seeing what nurtured will do before it does it.

script.py  PURE: the command line's scripted behaviour (--as, --click, --reply, --ooo, --until)
simulate.py  a lead's journey run by the real engine on a throwaway copy of the database
sandbox.py  that copy: a temporary SQLite database, a capturing transport, nothing shared
journey.py  PURE: the journey as a table or JSON
cli.py  the ``nurtured simulate`` command
"""
