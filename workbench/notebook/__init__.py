"""Notebook surfaces: IPython magics, live widgets and the UI pump that drives them.

``%load_ext workbench`` registers ``%wb`` (:mod:`workbench.notebook.magics`, state in
:mod:`workbench.notebook.session`); the widgets (:mod:`workbench.notebook.widgets`) also work
on their own with a :class:`~workbench.Feed`. ``import workbench`` imports none of this, so
IPython, ipywidgets and bqplot load only in a notebook.
"""
