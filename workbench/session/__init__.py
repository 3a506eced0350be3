"""The application's state without Qt: what is loaded, edited, shown and running, and the events it emits.

The window binds widgets to a :class:`~workbench.session.session.Session`; tests drive one without a display.
"""
