"""Message-level assembly: which segment makes or enriches which resource.

The plan (``plan.py``) is a table in the shape of the IG message maps
(``mappings/messages/*.csv``): segment → resource, merge target, links.
"""
