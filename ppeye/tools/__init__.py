"""The ``tools/*.py`` entry points that ppeye itself runs (``python -m ppeye.tools.<name>``, or the
file as a script): they work after a normal install, without the source checkout."""
